/*
 * The eBay response mappers: every input is the body of a 200 answer, mapped to price
 * points by ebay-fetch's own code for Finding, Insights and Browse in turn. Every point
 * written must be a record the next stage takes. The mappers are static, so their files
 * are compiled into this target.
 */
#include "../../stages/ebay/point.c"
#include "../../stages/ebay/oauth.c"
#include "../../stages/ebay/finding.c"
#include "../../stages/ebay/rest.c"

#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The Finding page's listings, as ebay_fetch_finding maps a page that is not an error. */
static void
map_finding(struct fetcher *f, const struct job *j, const struct buf *body)
{
	struct jdoc d;

	if (ebay_parse_body(body, &d) == 0)
		finding_items(f, j, &d, first(&d, JD_ROOT, "findCompletedItemsResponse"));
	jd_free(&d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fetcher f;
	struct job j;
	struct http_response res = { 0 };
	long offset;
	int api;

	memset(&f, 0, sizeof(f));
	res.status = 200;
	buf_add(&res.body, data, size);
	for (api = API_FINDING; api <= API_BROWSE; api++) {
		memset(&j, 0, sizeof(j));
		j.job_id = j.intake_id = j.source_id = "null";
		j.reputation = 1.0;
		j.api = (enum api)api;
		offset = 0;
		if (api == API_FINDING)
			map_finding(&f, &j, &res.body);
		else
			take_page(&f, &j, &rest_apis[api == API_INSIGHTS ? 0 : 1], &res, &offset);
	}
	if (f.out.len > 0)
		fuzz_check_records(f.out.data, f.out.len);
	buf_free(&f.out);
	buf_free(&f.url);
	http_response_free(&res);
	return 0;
}
