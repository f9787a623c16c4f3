/*
 * eBay's Finding API (findCompletedItems), for mirrors, archives and recordings that
 * still speak its format: every value wrapped in an array, errors in errorMessage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ebay.h"

#define FINDING_PATH "/services/search/FindingService/v1"

/* Finding wraps every value in an array: the first element of o[name]. */
static jv
first(struct jdoc *d, jv o, const char *name)
{
	jv v = jd_get(d, o, name);

	return jd_type(d, v) == J_ARRAY ? jd_child(d, v) : v;
}

static const char *
first_string(struct jdoc *d, jv o, const char *name)
{
	return jd_str(d, first(d, o, name));
}

static void
finding_item(struct fetcher *f, const struct job *j, struct jdoc *d, jv item)
{
	jv status = first(d, item, "sellingStatus");
	jv price = first(d, status, "currentPrice");
	jv usd = first(d, status, "convertedCurrentPrice");
	jv ship = first(d, first(d, item, "shippingInfo"), "shippingServiceCost");
	const char *usd_currency = first_string(d, usd, "@currencyId");
	const char *state = first_string(d, status, "sellingState");
	struct point p = { 0 };

	/* Sold items only: an auction that ended without a sale is not a price. */
	if (state == NULL || strcmp(state, "EndedWithSales") != 0)
		return;
	p.external_id = first_string(d, item, "itemId");
	p.title = first_string(d, item, "title");
	p.url = first_string(d, item, "viewItemURL");
	p.condition = first_string(d, first(d, item, "condition"), "conditionDisplayName");
	p.price_type = "sold";
	p.amount = first_string(d, price, "__value__");
	p.currency = first_string(d, price, "@currencyId");
	p.shipping_amount = first_string(d, ship, "__value__");
	p.shipping_currency = first_string(d, ship, "@currencyId");
	p.converted_usd =
		usd_currency && strcmp(usd_currency, "USD") == 0 ? first_string(d, usd, "__value__") : NULL;
	p.sold_at = first_string(d, first(d, item, "listingInfo"), "endTime");
	p.doc = d;
	p.raw = item;
	ebay_write_point(f, j, &p);
}

/* The listings of a page's response (resp, its findCompletedItemsResponse), mapped. */
static void
finding_items(struct fetcher *f, const struct job *j, struct jdoc *d, jv resp)
{
	jv item;

	for (item = jd_child(d, jd_get(d, first(d, resp, "searchResult"), "item")); item;
	     item = jd_next(d, item))
		finding_item(f, j, d, item);
}

/* A Finding error at the top level or in the response: its errorId, or 0. */
long
ebay_finding_error(struct jdoc *d, const char **message)
{
	jv resp = first(d, JD_ROOT, "findCompletedItemsResponse");
	jv msg = first(d, resp ? resp : JD_ROOT, "errorMessage");
	jv err = first(d, msg, "error");
	const char *id = first_string(d, err, "errorId");

	*message = first_string(d, err, "message");
	return id ? strtol(id, NULL, 10) : 0;
}

int
ebay_fetch_finding(struct fetcher *f, struct job *j)
{
	struct http_response res = { 0 };
	int page, total_pages = 1, rc = 0;
	const char *message;

	if (!f->opt.replay_dir && (!j->app_id || !*j->app_id)) {
		snprintf(j->error, sizeof(j->error),
			 "no eBay credentials: set EBAY_APP_ID (or the source's "
			 "config app_id)");
		return -1;
	}
	for (page = 1; page <= j->max_pages && page <= total_pages; page++) {
		struct jdoc d;
		jv resp, pagination;
		long id;
		int bad;

		buf_reset(&f->url);
		buf_addf(&f->url,
			 "%s%s?OPERATION-NAME=findCompletedItems&SERVICE-VERSION=1.13.0"
			 "&SECURITY-APPNAME=",
			 f->finding_base, FINDING_PATH);
		http_add_escaped(&f->url, j->app_id ? j->app_id : "");
		buf_addf(&f->url, "&GLOBAL-ID=%s&RESPONSE-DATA-FORMAT=JSON&keywords=",
			 j->global_id ? j->global_id : "EBAY-US");
		http_add_escaped(&f->url, j->query.data);
		buf_adds(&f->url, "&categoryId=");
		http_add_escaped(&f->url, j->category);
		buf_addf(&f->url,
			 "&itemFilter(0).name=SoldItemsOnly&itemFilter(0).value=true"
			 "&sortOrder=EndTimeSoonest&paginationInput.entriesPerPage=100"
			 "&paginationInput.pageNumber=%d",
			 page);
		if (ebay_get_page(f, j, NULL, &res) < 0) {
			rc = -1;
			break;
		}
		bad = ebay_parse_body(&res.body, &d) < 0;
		id = ebay_finding_error(&d, &message);
		resp = first(&d, JD_ROOT, "findCompletedItemsResponse");
		if (res.status != 200 || id || resp == 0) {
			if (res.status == 200 && bad)
				ebay_fail_garbled(j, "Finding");
			else
				ebay_fail_status(j, res.status == 200 ? 400 : res.status, "Finding", id,
						 message);
			if (id == 10001)
				j->retryable = 1;
			jd_free(&d);
			rc = -1;
			break;
		}
		f->pages++;
		finding_items(f, j, &d, resp);
		pagination = first(&d, resp, "paginationOutput");
		if (first_string(&d, pagination, "totalPages"))
			total_pages = atoi(first_string(&d, pagination, "totalPages"));
		jd_free(&d);
	}
	http_response_free(&res);
	return rc;
}
