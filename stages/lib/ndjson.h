/*
 * Newline-delimited JSON: reading lines of any length, checking that a line is one
 * JSON object, finding its top-level members without building a tree, passing records
 * through byte for byte, adding fields to them, and the read-transform-write loop
 * that every stage runs.
 *
 * Why a scanner of our own for the stream, when cJSON reads everything nested (a job's
 * source, rules and fx_rates, an eBay response, a rules file):
 * - pass-through must be byte-exact: a record a stage does not own, and every member of
 *   one it does, goes out as it came (numbers such as 1e400 or 45.10, escapes, the
 *   "raw" audit copy), which no parse-and-print round trip guarantees;
 * - the scanner keeps where each top-level member lies, so that a stage edits a record
 *   in place (drops and appends members) without rebuilding it;
 * - speed and flat memory: one pass, no tree and no allocation per value, on every line
 *   of every stage, where most lines are only looked at and passed on.
 * The scanner is also the strict gate for records (duplicate keys, lone surrogates,
 * \u0000): cJSON reads a record's nested values only after the line has passed it.
 */
#ifndef NDJSON_H
#define NDJSON_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "exits.h" /* its functions return exit statuses; callers include it themselves */

/* Deepest nesting of arrays and objects a line may have. */
#define NDJ_MAX_DEPTH 512
/* Longest line kept; a longer one is reported and skipped without being stored. */
#define NDJ_MAX_LINE ((size_t)256 << 20)

/* One top-level member of a record. */
struct ndj_member {
	const char *key; /* decoded key; not NUL-terminated */
	size_t key_len;
	const char *text; /* the member as written: from the key's quote to the value's end */
	const char *val;  /* the value as written (raw JSON text) */
	size_t val_len;
	size_t key_off; /* private: where an escaped key was decoded */
};

struct ndj_key; /* private to ndjson.c */

/* One line, checked and indexed by ndj_scan(). Reused from line to line. */
struct ndj_record {
	char *line; /* the line without "\n" or "\r\n", NUL-terminated; owned by the reader */
	size_t len;
	unsigned long lineno;
	struct ndj_member *members;
	size_t nmembers;
	const char *kind; /* the decoded "kind", NUL-terminated */
	char err[256];	  /* why the record was refused, for the caller to report */
	/* private */
	size_t members_cap;
	struct buf arena;     /* decoded escaped keys */
	struct buf kind_buf;  /* decoded kind */
	struct ndj_key *keys; /* the keys of the objects open while scanning, for duplicates */
	size_t keys_cap;
	uint32_t *slots; /* a hash table of one object's keys */
	size_t slots_cap;
};

/* Free what a record holds (not the line, which belongs to the reader). */
void ndj_record_free(struct ndj_record *r);

/*
 * Check that line (len bytes) is exactly one JSON object with a string "kind" and
 * index its members into r. Returns 0, or -1 with the reason in r->err.
 *
 * Stricter than RFC 8259 where JSON readers disagree, so that every reader of a record
 * that passed (cJSON, PostgreSQL, the stages' C strings) sees one meaning: an object
 * with two equal keys, at any depth, is refused (cJSON takes the first, PostgreSQL the
 * last); so are the escape \u0000 and a \u escape of a lone surrogate (no character).
 * Also refused: invalid UTF-8, raw control characters, nesting deeper than
 * NDJ_MAX_DEPTH.
 */
int ndj_scan(struct ndj_record *r, char *line, size_t len);

/*
 * Check that text (len bytes) is one JSON object under the rules of ndj_scan(), with
 * no "kind" needed: for JSON read with cJSON from elsewhere than a record (a rules
 * file). Returns 0, or -1 with the reason in err.
 */
int ndj_check_object(const char *text, size_t len, char *err, size_t errlen);

/* The member named key (keys are unique: ndj_scan() refuses duplicates), or NULL. */
const struct ndj_member *ndj_get(const struct ndj_record *r, const char *key);

/* Whether a member is absent or null. */
int ndj_is_null(const struct ndj_member *m);

/*
 * Read a member's boolean value into *v (1 for true, 0 for false). Returns 0 for a
 * boolean, 1 when the member is absent, -1 for null or another type (*v is then 0).
 */
int ndj_bool(const struct ndj_member *m, int *v);

/* Whether a member is true (absent, null or any other value is not). */
int ndj_is_true(const struct ndj_member *m);

/*
 * Decode a member's string value into out (replacing its content). Returns 0 for a
 * string, 1 when the member is absent or null (out is then empty), -1 for another type.
 */
int ndj_string(const struct ndj_member *m, struct buf *out);

/*
 * Decode a JSON string literal of len bytes, quotes included, that ndj_scan() or
 * ndj_check_object() has passed (or any escape-valid literal), appending its bytes to out.
 */
void ndj_decode_string(const char *lit, size_t len, struct buf *out);

/* Length of the UTF-8 sequence at p (1 to 4 bytes, before end), or 0 when it is not UTF-8. */
int ndj_utf8_length(const unsigned char *p, const unsigned char *end);

/*
 * Read a JSON integer value into *v. Returns 0, 1 when absent or null, -1 when the
 * value is not an integer that fits in 64 bits.
 */
int ndj_int(const struct ndj_member *m, int64_t *v);

/*
 * Writing to stdout. Output is buffered; ndj_flush() pushes it out (stages call it at
 * job boundaries; the reader calls it before a read that would block). The first
 * write error is remembered and makes every later write a no-op; ndj_run() reports it.
 * All return 0, or -1 once output has failed.
 */
int ndj_write(const void *data, size_t len);
int ndj_flush(void);
int ndj_output_failed(void);

/*
 * Close stdout and check it, for programs that write records without ndj_run().
 * Returns EXIT_OK (also on a closed pipe: EPIPE ends a stage quietly), or EXIT_IOERR
 * with the error logged.
 */
int ndj_close_output(void);

/* Write the record exactly as it came, with its newline. */
int ndj_pass(const struct ndj_record *r);

/*
 * Write the record with the top-level members named in drop (ndrop names) left out
 * and the members in extra appended. extra is JSON member text without a leading
 * comma ("\"a\":1,\"b\":null"); it may be empty. At most NDJ_MAX_DROP names.
 */
#define NDJ_MAX_DROP 16
int ndj_write_edited(const struct ndj_record *r, const char *const *drop, size_t ndrop, const char *extra,
		     size_t extra_len);

/*
 * Fail the job of job record r, which the stage cannot use (reason): pass r on, then
 * write a job_error (retryable: false) with r's job_id
 * and intake_id, so that the job ends failed with the reason instead of being lost or
 * tried again in vain. The caller still returns NDJ_BAD (the loop reports the line) and
 * drops the job's later price_point, job_end and job_error records. Returns 0, or -1 on
 * a write error.
 */
int ndj_fail_job(const struct ndj_record *r, const char *reason);

/* Whether kind is that of a record that follows its job's record: price_point, job_end,
 * job_error. */
int ndj_is_job_part(const char *kind);

/* A stage: what to do with each record and at the end of input. */
struct ndj_stage {
	/*
	 * Called for every well-formed record. Returns 0 when done with it, NDJ_BAD
	 * with r->err set when the record lacks what the stage needs (the loop reports it
	 * with the line number and goes on), or an exit status of 64 or more to stop.
	 */
	int (*record)(struct ndj_record *r, void *ctx);
	/* Called once at the end of input (not after --strict stopped it); same returns. */
	int (*finish)(void *ctx);
	void *ctx;
	int strict; /* stop at the first bad line */
};

#define NDJ_BAD 1

/*
 * Have ndj_run() call fn(ctx) before a read of stdin that would block (before it flushes
 * stdout): a stage that holds records back to handle several at once deals with them
 * there. fn returns 0, or an exit status that stops the loop as a record callback's does.
 */
void ndj_set_idle(int (*fn)(void *ctx), void *ctx);

/* Whether input is waiting: unread bytes in ndj_run()'s buffer, end of input, or stdin readable. */
int ndj_input_waiting(void);

/*
 * Run the loop over stdin and stdout, then close stdout and check it. Returns the
 * exit status: 0, 65 when any line was bad, 74 on an I/O error, 0 on a closed pipe
 * (EPIPE: "| head" is normal use), or what a callback returned.
 */
int ndj_run(const struct ndj_stage *stage);

#endif
