# Test data maker: the price_point records that ebay-fetch is to write for the
# recorded Finding responses, built independently of it with jq. Used to make
# finding-points.ndjson (see tests/data/README.md), which the pure stages' tests read.
# Run: jq -c -n --slurpfile p1 P1 --slurpfile p2 P2 -f finding-to-points.jq
def job: {
  job_id: "6f1d2c3b-0000-4000-8000-000000000001",
  intake_id: "7a2e3d4c-0000-4000-8000-000000000001",
  source_id: "8b3f4e5d-0000-4000-8000-000000000001"
};
def money: if . == null then null else .[0] end;
($p1[0], $p2[0])
| .findCompletedItemsResponse[0].searchResult[0].item[]
| select(.sellingStatus[0].sellingState[0] == "EndedWithSales")
| . as $item
| ($item.sellingStatus[0].currentPrice | money) as $price
| ($item.sellingStatus[0].convertedCurrentPrice | money) as $usd
| ($item.shippingInfo[0].shippingServiceCost // null | money) as $ship
| {kind: "price_point"} + job + {
    adapter: "ebay_finding",
    external_id: $item.itemId[0],
    title: $item.title[0],
    url: $item.viewItemURL[0],
    condition: ($item.condition[0].conditionDisplayName[0] // null),
    price_type: "sold",
    amount: $price.__value__,
    currency: $price["@currencyId"],
    shipping_amount: ($ship.__value__ // null),
    shipping_currency: ($ship["@currencyId"] // null),
    converted_usd: (if $usd["@currencyId"] == "USD" then $usd.__value__ else null end),
    sold_at: $item.listingInfo[0].endTime[0],
    reputation_weight: 1.0,
    raw: $item
  }
