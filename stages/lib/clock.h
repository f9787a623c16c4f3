/*
 * Time for the stages: durations, deadlines, naps.
 */
#ifndef CLOCK_H
#define CLOCK_H

/* Milliseconds on the monotonic clock: for durations and deadlines. */
double clock_ms(void);

/* Milliseconds since the epoch: for times other processes share through files. */
double clock_wall_ms(void);

/* Sleep ms milliseconds (nothing when ms <= 0); a caught signal cuts the nap short. */
void clock_sleep_ms(double ms);

#endif
