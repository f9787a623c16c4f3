/*
 * eBay's REST search APIs, Marketplace Insights (sold) and Browse (asking prices),
 * driven by one table: paths, scopes and field names are the only differences.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ebay.h"

/* Money in REST: value/currency is converted to the marketplace's currency; the amount
 * as listed is convertedFromValue/convertedFromCurrency, present only when converted. */
static void
rest_money(const cJSON *money, const char **amount, const char **currency, const char **usd)
{
	const char *value = ebay_string(money, "value"), *cur = ebay_string(money, "currency");
	const char *from = ebay_string(money, "convertedFromValue");
	const char *from_cur = ebay_string(money, "convertedFromCurrency");

	*amount = from && from_cur ? from : value;
	*currency = from && from_cur ? from_cur : cur;
	if (usd)
		*usd = cur && strcmp(cur, "USD") == 0 ? value : NULL;
}

/* What tells Insights and Browse apart. */
struct rest_api {
	enum api api;
	const char *name, *path, *scope;
	const char *items; /* the array of listings in a page */
	const char *price; /* the money member of a listing */
	int sold;	   /* sold prices (with dates and quantities), else asks (with shipping) */
	char separator;	   /* between keywords: Insights reads a comma as AND, a space as OR */
	const char *more;  /* further query parameters */
};

static const struct rest_api rest_apis[] = {
	{ API_INSIGHTS, "Marketplace Insights", "/buy/marketplace_insights/v1_beta/item_sales/search",
	  SCOPE_INSIGHTS, "itemSales", "lastSoldPrice", 1, ',', "" },
	{ API_BROWSE, "Browse", "/buy/browse/v1/item_summary/search", SCOPE_BROWSE, "itemSummaries", "price",
	  0, ' ', "&filter=buyingOptions%3A%7BAUCTION%7CFIXED_PRICE%7D" },
};

static void
rest_item(struct fetcher *f, const struct job *j, const struct rest_api *a, const cJSON *item)
{
	struct point p = { 0 };
	const cJSON *qty = cJSON_GetObjectItemCaseSensitive(item, "totalSoldQuantity");
	const cJSON *ships = cJSON_GetObjectItemCaseSensitive(item, "shippingOptions");

	p.external_id = ebay_string(item, "itemId");
	p.title = ebay_string(item, "title");
	p.url = ebay_string(item, "itemWebUrl");
	p.condition = ebay_string(item, "condition");
	p.price_type = a->sold ? "sold" : "ask";
	rest_money(cJSON_GetObjectItemCaseSensitive(item, a->price), &p.amount, &p.currency,
		   &p.converted_usd);
	if (a->sold) {
		p.sold_at = ebay_string(item, "lastSoldDate");
		if (cJSON_IsNumber(qty) && qty->valuedouble >= 1 && qty->valuedouble < 1e9)
			p.quantity = (int)qty->valuedouble;
	} else if (cJSON_IsArray(ships) && cJSON_GetArraySize(ships) > 0) {
		rest_money(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(ships, 0), "shippingCost"),
			   &p.shipping_amount, &p.shipping_currency, NULL);
	}
	p.raw = item;
	ebay_write_point(f, j, &p);
}

/* A REST error body's first message, or NULL. */
static const char *
rest_error(const cJSON *doc, long *id)
{
	const cJSON *errors = cJSON_GetObjectItemCaseSensitive(doc, "errors");
	const cJSON *e = cJSON_IsArray(errors) ? cJSON_GetArrayItem(errors, 0) : NULL;
	const cJSON *eid = cJSON_GetObjectItemCaseSensitive(e, "errorId");

	*id = cJSON_IsNumber(eid) ? (long)eid->valuedouble : 0;
	return ebay_string(e, "message");
}

/* The URL of the page at offset into f->url; the job's query is left as it is. */
static void
page_url(struct fetcher *f, const struct job *j, const struct rest_api *a, long offset)
{
	struct buf q = BUF_INIT;
	char *p;

	buf_adds(&q, j->query.data ? j->query.data : "");
	for (p = q.data; p && *p; p++)
		if (*p == ' ')
			*p = a->separator;
	buf_reset(&f->url);
	buf_addf(&f->url, "%s%s?q=", f->rest_base, a->path);
	http_add_escaped(&f->url, q.data ? q.data : "");
	buf_adds(&f->url, "&category_ids=");
	http_add_escaped(&f->url, j->category);
	buf_addf(&f->url, "%s&limit=200&offset=%ld", a->more, offset);
	buf_free(&q);
}

/*
 * Map one page's listings. Returns 1 when another page follows (*offset moved on to
 * it), 0 when this was the last, -1 with j->error set for an error answer.
 */
static int
take_page(struct fetcher *f, struct job *j, const struct rest_api *a, const struct http_response *res,
	  long *offset)
{
	cJSON *doc = ebay_parse_body(&res->body);
	const cJSON *item, *limit;
	const char *message;
	long id;
	int more;

	if (res->status != 200 || doc == NULL) {
		message = rest_error(doc, &id);
		ebay_fail_status(j, res->status == 200 ? 502 : res->status, a->name, id, message);
		cJSON_Delete(doc);
		return -1;
	}
	f->pages++;
	cJSON_ArrayForEach (item, cJSON_GetObjectItemCaseSensitive(doc, a->items))
		rest_item(f, j, a, item);
	/* Read all that paging needs before the tree goes. */
	more = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "next"));
	limit = cJSON_GetObjectItemCaseSensitive(doc, "limit");
	*offset += cJSON_IsNumber(limit) && limit->valuedouble >= 1 ? (long)limit->valuedouble : 200;
	cJSON_Delete(doc);
	return more && *offset < 10000;
}

int
ebay_fetch_rest(struct fetcher *f, struct job *j)
{
	const struct rest_api *a = &rest_apis[j->api == API_INSIGHTS ? 0 : 1];
	struct http_response res = { 0 };
	struct buf auth = BUF_INIT;
	char *token = ebay_get_token(f, j, a->scope, 0);
	const char *headers[4] = { NULL, "X-EBAY-C-MARKETPLACE-ID: EBAY_US", "Accept: application/json",
				   NULL };
	long offset = 0;
	int page, rc = token ? 1 : -1, refreshed = 0;

	for (page = 1; rc > 0 && page <= j->max_pages; page++) {
		buf_reset(&auth);
		buf_addf(&auth, "Authorization: Bearer %s", token);
		headers[0] = auth.data;
		page_url(f, j, a, offset);
		if (ebay_get_page(f, j, headers, &res) < 0) {
			rc = -1;
		} else if (res.status == 401 && !refreshed) {
			/* The cached token may have been revoked: one fresh token, one more try. */
			refreshed = 1;
			free(token);
			token = ebay_get_token(f, j, a->scope, 1);
			rc = token ? 1 : -1;
			page--;
		} else {
			rc = take_page(f, j, a, &res, &offset);
		}
	}
	free(token);
	buf_free(&auth);
	http_response_free(&res);
	return rc < 0 ? -1 : 0;
}
