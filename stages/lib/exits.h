/*
 * The exit statuses every stage uses (sysexits(3), as DESIGN.md lists them) and the
 * version every stage reports, named once so that no stage hard-codes them.
 */
#ifndef EXITS_H
#define EXITS_H

#define COIN_PRICER_VERSION "0.1.0"

enum {
	EXIT_OK = 0,
	EXIT_USAGE = 64,
	EXIT_DATAERR = 65,
	EXIT_NOINPUT = 66,
	EXIT_UNAVAILABLE = 69,
	EXIT_SOFTWARE = 70,
	EXIT_IOERR = 74,
	EXIT_TEMPFAIL = 75,
	EXIT_CONFIG = 78
};

#endif
