/*
 * The in-process stage driver of harness.h. Per input: stdin and stdout become
 * memfds, getopt is reset, the stage's main runs, its output is checked line by line.
 */
#include "harness.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ndjson.h"

#ifndef FUZZ_ROOT
#error "FUZZ_ROOT: the repository, where tests/cases/ is"
#endif

int
fuzz_file_open(struct fuzz_file *f, const void *data, size_t len)
{
	const char *p = data;
	ssize_t n;

	f->fd = memfd_create("fuzz", 0);
	if (f->fd < 0)
		abort();
	while (len > 0) {
		n = write(f->fd, p, len);
		if (n <= 0)
			abort();
		p += n;
		len -= (size_t)n;
	}
	if (lseek(f->fd, 0, SEEK_SET) != 0)
		abort();
	snprintf(f->path, sizeof(f->path), "/proc/self/fd/%d", f->fd);
	return 0;
}

void
fuzz_file_close(struct fuzz_file *f)
{
	close(f->fd);
	f->fd = -1;
}

void
fuzz_check_records(char *out, size_t size)
{
	struct ndj_record r = { 0 };
	char *line, *nl, *end = out + size;

	for (line = out; line < end; line = nl + 1) {
		nl = memchr(line, '\n', (size_t)(end - line));
		if (nl == NULL) {
			fprintf(stderr, "fuzz: the output's last line has no newline\n");
			abort();
		}
		*nl = '\0';
		/* --help and --version write text, not records. */
		if (strncmp(out, "usage: ", 7) == 0 || strstr(out, "(coin-pricer)") != NULL)
			break;
		if (ndj_scan(&r, line, (size_t)(nl - line)) < 0) {
			fprintf(stderr, "fuzz: a bad record was written: %s\n%.300s\n", r.err, line);
			abort();
		}
	}
	ndj_record_free(&r);
}

/* Every line the stage wrote must be a record the next stage takes. */
static void
check_output(int fd)
{
	off_t size = lseek(fd, 0, SEEK_END);
	char *out;

	if (size <= 0)
		return;
	out = malloc((size_t)size + 1);
	if (out == NULL || pread(fd, out, (size_t)size, 0) != size)
		abort();
	out[size] = '\0';
	fuzz_check_records(out, (size_t)size);
	free(out);
}

void
fuzz_run_stage(int argc, char **argv, const uint8_t *in, size_t len)
{
	static FILE *devnull;
	static int nullfd;
	struct fuzz_file input, output;
	int status, outfd;

	if (devnull == NULL) {
		devnull = fopen("/dev/null", "w");
		nullfd = open("/dev/null", O_RDONLY);
		setenv("LOG_FORMAT", "text", 1);
		if (devnull == NULL || nullfd < 0 || chdir(FUZZ_ROOT) != 0)
			abort();
	}
	fuzz_file_open(&input, in, len);
	fuzz_file_open(&output, "", 0);
	if (dup2(input.fd, 0) < 0)
		abort();
	outfd = dup(output.fd);
	stdout = fdopen(outfd, "w");
	if (stdout == NULL)
		abort();
	optind = 0; /* glibc: start getopt afresh */
	status = stage_main(argc, argv);
	/* A stage that stopped before ndj_run (a usage error) did not close stdout. */
	if (fcntl(outfd, F_GETFD) >= 0)
		fclose(stdout);
	stdout = devnull;
	if (status != 0 && status != 64 && status != 65 && status != 78) {
		fprintf(stderr, "fuzz: the stage exited %d\n", status);
		abort();
	}
	check_output(output.fd);
	fuzz_file_close(&input);
	fuzz_file_close(&output);
	dup2(nullfd, 0);
}

int
fuzz_stage_input(const char *stage, const uint8_t *data, size_t size)
{
	static char paths[8][600];
	char *args = NULL, *argv[10], *p, *save = NULL;
	const uint8_t *nl;
	int argc = 0;

	if (chdir(FUZZ_ROOT) != 0)
		abort();
	argv[argc++] = (char *)(uintptr_t)stage;
	if (size >= 2 && data[0] == '#' && data[1] == '!') {
		nl = memchr(data, '\n', size);
		if (nl == NULL)
			return 0;
		args = strndup((const char *)data + 2, (size_t)(nl - data) - 2);
		if (args == NULL || strlen(args) != (size_t)(nl - data) - 2)
			goto skip;
		for (p = strtok_r(args, " ", &save); p != NULL; p = strtok_r(NULL, " ", &save)) {
			if (argc == 9)
				goto skip;
			if (p[0] != '-') {
				/* Only the cases' own files: never /dev/zero or the like. */
				char *path = paths[argc - 1];

				snprintf(path, sizeof(paths[0]), "tests/cases/%s/%s", stage, p);
				if (strchr(p, '/') != NULL || access(path, R_OK) != 0)
					goto skip;
				p = path;
			}
			argv[argc++] = p;
		}
		size -= (size_t)(nl + 1 - data);
		data = nl + 1;
	}
	argv[argc] = NULL;
	fuzz_run_stage(argc, argv, data, size);
skip:
	free(args);
	return 0;
}
