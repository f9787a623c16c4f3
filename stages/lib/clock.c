/*
 * clock_gettime and nanosleep, once, in milliseconds.
 */
#include "clock.h"

#include <time.h>

static double
ms_of(clockid_t clock)
{
	struct timespec t;

	clock_gettime(clock, &t);
	return (double)t.tv_sec * 1000 + (double)t.tv_nsec / 1e6;
}

double
clock_ms(void)
{
	return ms_of(CLOCK_MONOTONIC);
}

double
clock_wall_ms(void)
{
	return ms_of(CLOCK_REALTIME);
}

void
clock_sleep_ms(double ms)
{
	struct timespec t;

	if (ms <= 0)
		return;
	t.tv_sec = (time_t)(ms / 1000);
	t.tv_nsec = (long)((ms - (double)t.tv_sec * 1000) * 1e6);
	nanosleep(&t, NULL);
}
