/*
 * The rates file of normalize-usd --rates: the input is the file; a fixed stream of
 * a job and points in several currencies goes through the stage with it.
 */
#include <string.h>

#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char points[] =
	"{\"kind\":\"job\",\"job_id\":\"j\",\"fx_rates\":{\"EUR\":{\"usd_per_unit\":\"1.08\",\"as_of\":\"2026-11-27\"}},"
	"\"rules\":[{\"rule_type\":\"min_price_cents\",\"rule_value\":\"100\"}]}\n"
	"{\"kind\":\"price_point\",\"amount\":\"45.00\",\"currency\":\"GBP\",\"shipping_amount\":\"3.5\"}\n"
	"{\"kind\":\"price_point\",\"amount\":\"12000\",\"currency\":\"JPY\",\"shipping_amount\":\"800\","
	"\"shipping_currency\":\"jpy\"}\n"
	"{\"kind\":\"price_point\",\"amount\":\"0.5\",\"currency\":\"CAD\",\"converted_usd\":\"0.36\"}\n"
	"{\"kind\":\"price_point\",\"amount\":\"99999999999999999.99\",\"currency\":\"EUR\"}\n"
	"{\"kind\":\"price_point\",\"amount\":\"7\",\"currency\":\"USD\",\"shipping_amount\":\"1\","
	"\"shipping_currency\":\"GBP\"}\n"
	"{\"kind\":\"job_end\",\"job_id\":\"j\"}\n";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_file rates;
	char *argv[] = { "normalize-usd", "--rates", rates.path, NULL };

	fuzz_file_open(&rates, data, size);
	fuzz_run_stage(3, argv, (const uint8_t *)points, strlen(points));
	fuzz_file_close(&rates);
	return 0;
}
