/*
 * What the fuzz targets share. A stage is driven in-process through its own main(),
 * compiled with -Dmain=stage_main: the input goes in as stdin (a memfd), the output
 * comes back from a memfd, and every line it wrote must be a record the scanner takes.
 * Nothing here knows a stage's internals, so stages can be rewritten freely.
 */
#ifndef FUZZ_HARNESS_H
#define FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* The stage's main(), renamed at compile time. */
int stage_main(int argc, char **argv) __attribute__((weak)); /* absent from library targets */

/* A file holding data (a memfd), and the path that opens it: /proc/self/fd/N. */
struct fuzz_file {
	int fd;
	char path[40];
};
int fuzz_file_open(struct fuzz_file *f, const void *data, size_t len);
void fuzz_file_close(struct fuzz_file *f);

/*
 * Run the stage with argv (argc entries) on stdin = in (len bytes). Aborts, so that
 * libFuzzer keeps the input, when the stage exits with a status no input may cause
 * (anything but 0, 64, 65, 78) or writes a line that is not a good record.
 */
void fuzz_run_stage(int argc, char **argv, const uint8_t *in, size_t len);

/* Every line of out[0..size) must be a record the scanner takes, else abort. The
 * lines' newlines are overwritten. */
void fuzz_check_records(char *out, size_t size);

/*
 * The convention of the stage targets: input that starts with "#!" has its first line
 * taken as options ("#!--rates rates.csv"), split at spaces; an argument that is not
 * an option must name a file of tests/cases/STAGE (no '/'), or the input is skipped.
 * The rest is stdin. The seeds are the stage's test cases, written this way.
 */
int fuzz_stage_input(const char *stage, const uint8_t *data, size_t size);

#endif
