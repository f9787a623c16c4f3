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
static const cJSON *
first(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsArray(v) ? cJSON_GetArrayItem(v, 0) : v;
}

static const char *
first_string(const cJSON *o, const char *name)
{
	const cJSON *v = first(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void
finding_item(struct fetcher *f, const struct job *j, const cJSON *item)
{
	const cJSON *status = first(item, "sellingStatus");
	const cJSON *price = first(status, "currentPrice");
	const cJSON *usd = first(status, "convertedCurrentPrice");
	const cJSON *ship = first(first(item, "shippingInfo"), "shippingServiceCost");
	const char *usd_currency = first_string(usd, "@currencyId");
	const char *state = first_string(status, "sellingState");
	struct point p = { 0 };

	/* Sold items only: an auction that ended without a sale is not a price. */
	if (state == NULL || strcmp(state, "EndedWithSales") != 0)
		return;
	p.external_id = first_string(item, "itemId");
	p.title = first_string(item, "title");
	p.url = first_string(item, "viewItemURL");
	p.condition = first_string(first(item, "condition"), "conditionDisplayName");
	p.price_type = "sold";
	p.amount = first_string(price, "__value__");
	p.currency = first_string(price, "@currencyId");
	p.shipping_amount = first_string(ship, "__value__");
	p.shipping_currency = first_string(ship, "@currencyId");
	p.converted_usd =
		usd_currency && strcmp(usd_currency, "USD") == 0 ? first_string(usd, "__value__") : NULL;
	p.sold_at = first_string(first(item, "listingInfo"), "endTime");
	p.raw = item;
	ebay_write_point(f, j, &p);
}

/* A Finding error at the top level or in the response: its errorId, or 0. */
long
ebay_finding_error(const cJSON *doc, const char **message)
{
	const cJSON *resp = first(doc, "findCompletedItemsResponse");
	const cJSON *msg = first(resp ? resp : doc, "errorMessage");
	const cJSON *err = first(msg, "error");
	const char *id = first_string(err, "errorId");

	*message = first_string(err, "message");
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
		cJSON *doc;
		const cJSON *resp, *items, *item, *pagination;
		long id;

		buf_reset(&f->url);
		buf_addf(&f->url,
			 "%s%s?OPERATION-NAME=findCompletedItems&SERVICE-VERSION=1.13.0"
			 "&SECURITY-APPNAME=",
			 f->finding_base, FINDING_PATH);
		http_add_escaped(&f->url, j->app_id ? j->app_id : "");
		buf_adds(&f->url, "&GLOBAL-ID=EBAY-US&RESPONSE-DATA-FORMAT=JSON&keywords=");
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
		doc = ebay_parse_body(&res.body);
		id = ebay_finding_error(doc, &message);
		resp = first(doc, "findCompletedItemsResponse");
		if (res.status != 200 || id || resp == NULL) {
			if (res.status == 200 && doc == NULL)
				res.status = 502; /* garbled after every retry */
			ebay_fail_status(j, res.status == 200 ? 400 : res.status, "Finding", id, message);
			if (id == 10001)
				j->retryable = 1;
			cJSON_Delete(doc);
			rc = -1;
			break;
		}
		f->pages++;
		items = cJSON_GetObjectItemCaseSensitive(first(resp, "searchResult"), "item");
		cJSON_ArrayForEach (item, items)
			finding_item(f, j, item);
		pagination = first(resp, "paginationOutput");
		if (first_string(pagination, "totalPages"))
			total_pages = atoi(first_string(pagination, "totalPages"));
		cJSON_Delete(doc);
	}
	http_response_free(&res);
	return rc;
}
