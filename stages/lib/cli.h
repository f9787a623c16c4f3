/*
 * What every stage's command line shares: --help, --version, a wrong option, no stray
 * operands, and numbers from options and the environment.
 */
#ifndef CLI_H
#define CLI_H

#include <stdio.h>

/*
 * For the default: branch of a stage's getopt_long() switch (opterr = 0, "help" given
 * as 'h' and "version" as 'V'): prints the help or the version to stdout, or reports
 * a wrong option with the usage on stderr. Returns the exit status main returns.
 */
int cli_common_option(int c, char **argv, const char *program, void (*help)(void), void (*usage)(FILE *));

/* After the options: 0, or EXIT_USAGE with a message when operands are left. */
int cli_no_operands(int argc, char **argv, void (*usage)(FILE *));

/* A whole number from min to max: 0 with *out set, or -1. */
int cli_number(const char *s, long min, long max, long *out);

/* The number in environment variable name, or fallback (with a warning when it is not one). */
long cli_env_number(const char *name, long fallback, long min, long max);

/*
 * Under the worker: pipeline.sh names the shell that starts the stages in
 * COIN_PRICER_PARENT_PID (internal to the supervisor). Then this process asks for SIGKILL
 * when that parent dies, and ends at once (status 70) when its parent is already another
 * (the parent died between the fork and this call, too early for the signal). Without the
 * variable (a stage run by hand, under nohup, in an ad-hoc pipeline) it does nothing.
 * Called at the start of every stage's main().
 */
void cli_die_with_parent(void);

#endif
