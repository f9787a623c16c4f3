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
rest_money(struct jdoc *d, jv money, const char **amount, const char **currency, const char **usd)
{
	const char *value = jd_string(d, money, "value"), *cur = jd_string(d, money, "currency");
	const char *from = jd_string(d, money, "convertedFromValue");
	const char *from_cur = jd_string(d, money, "convertedFromCurrency");

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
rest_item(struct fetcher *f, const struct job *j, const struct rest_api *a, struct jdoc *d, jv item)
{
	struct point p = { 0 };
	jv ships = jd_get(d, item, "shippingOptions");

	p.external_id = jd_string(d, item, "itemId");
	p.title = jd_string(d, item, "title");
	p.url = jd_string(d, item, "itemWebUrl");
	p.condition = jd_string(d, item, "condition");
	p.price_type = a->sold ? "sold" : "ask";
	rest_money(d, jd_get(d, item, a->price), &p.amount, &p.currency, &p.converted_usd);
	if (a->sold) {
		/*
		 * No quantity: Insights' totalSoldQuantity counts the units a multi-quantity
		 * listing sold, one coin each, not coins in one lot (it stays in raw).
		 */
		p.sold_at = jd_string(d, item, "lastSoldDate");
	} else if (jd_type(d, ships) == J_ARRAY && jd_child(d, ships)) {
		rest_money(d, jd_get(d, jd_child(d, ships), "shippingCost"), &p.shipping_amount,
			   &p.shipping_currency, NULL);
	}
	p.doc = d;
	p.raw = item;
	ebay_write_point(f, j, &p);
}

/* A REST error body's first message, or NULL. */
static const char *
rest_error(struct jdoc *d, long *id)
{
	jv errors = jd_get(d, JD_ROOT, "errors");
	jv e = jd_type(d, errors) == J_ARRAY ? jd_child(d, errors) : 0;
	double eid;

	*id = jd_number(d, jd_get(d, e, "errorId"), &eid) ? (long)eid : 0;
	return jd_string(d, e, "message");
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
	struct jdoc d;
	int bad = ebay_parse_body(&res->body, &d) < 0;
	const char *message;
	double limit;
	long id;
	jv item;
	int more;

	if (res->status != 200 || bad) {
		message = rest_error(&d, &id);
		if (res->status == 200)
			ebay_fail_garbled(j, a->name);
		else
			ebay_fail_status(j, res->status, a->name, id, message);
		jd_free(&d);
		return -1;
	}
	f->pages++;
	for (item = jd_child(&d, jd_get(&d, JD_ROOT, a->items)); item; item = jd_next(&d, item))
		rest_item(f, j, a, &d, item);
	/* Read all that paging needs before the doc goes. */
	more = jd_type(&d, jd_get(&d, JD_ROOT, "next")) == J_STRING;
	if (!jd_number(&d, jd_get(&d, JD_ROOT, "limit"), &limit) || !(limit >= 1))
		limit = 200;
	*offset += limit > 1e6 ? 1000000 : (long)limit; /* past the last offset either way */
	jd_free(&d);
	return more && *offset < 10000;
}

int
ebay_fetch_rest(struct fetcher *f, struct job *j)
{
	const struct rest_api *a = &rest_apis[j->api == API_INSIGHTS ? 0 : 1];
	struct http_response res = { 0 };
	struct buf auth = BUF_INIT;
	char *token = ebay_get_token(f, j, a->scope, 0);
	char site[48];
	const char *headers[4] = { NULL, site, "Accept: application/json", NULL };
	long offset = 0;
	int page, rc = token ? 1 : -1, refreshed = 0;

	snprintf(site, sizeof(site), "X-EBAY-C-MARKETPLACE-ID: %s",
		 j->marketplace[0] ? j->marketplace : "EBAY_US");
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
