/*
 * Command-line conventions of DESIGN.md: --help and --version on stdout with status
 * 0, a wrong option with the usage on stderr and status 64.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "exits.h"
#include "log.h"
#include "ndjson.h"

int
cli_common_option(int c, char **argv, const char *program, void (*help)(void), void (*usage)(FILE *))
{
	switch (c) {
	case 'h':
		help();
		return ndj_close_output();
	case 'V':
		printf("%s (coin-pricer) %s\n", program, COIN_PRICER_VERSION);
		return ndj_close_output();
	default:
		log_error("option %s: unknown, or it needs a value", argv[optind - 1]);
		usage(stderr);
		return EXIT_USAGE;
	}
}

int
cli_no_operands(int argc, char **argv, void (*usage)(FILE *))
{
	if (optind >= argc)
		return 0;
	log_error("unexpected argument: %s", argv[optind]);
	usage(stderr);
	return EXIT_USAGE;
}

int
cli_number(const char *s, long min, long max, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	return errno || end == s || *end != '\0' || *out < min || *out > max ? -1 : 0;
}

long
cli_env_number(const char *name, long fallback, long min, long max)
{
	const char *v = getenv(name);
	long n;

	if (v == NULL || *v == '\0')
		return fallback;
	if (cli_number(v, min, max, &n) < 0) {
		log_warn("%s=%s is not a number from %ld to %ld; using %ld", name, v, min, max, fallback);
		return fallback;
	}
	return n;
}

void
cli_die_with_parent(void)
{
	const char *v = getenv("COIN_PRICER_PARENT_PID");
	long expected;

	if (v == NULL || *v == '\0')
		return;
	if (cli_number(v, 1, 0x7fffffffL, &expected) < 0) {
		fprintf(stderr,
			"COIN_PRICER_PARENT_PID=%s is not a process id (it is set by pipeline.sh alone)\n",
			v);
		_exit(EXIT_SOFTWARE);
	}
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || (long)getppid() != expected)
		_exit(EXIT_SOFTWARE);
	/* It names this process's parent alone: nothing this process may start inherits it. */
	unsetenv("COIN_PRICER_PARENT_PID");
}
