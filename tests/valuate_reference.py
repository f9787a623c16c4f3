#!/usr/bin/python3
"""An independent implementation of DESIGN.md's "Valuation, exactly", in exact
rational arithmetic, used by the property test of valuate.

  valuate_reference.py gen SEED N   write N random groups of price points (NDJSON)
  valuate_reference.py check IN OUT compare valuate's OUT with the reference on IN;
                                     print each difference, exit 1 if any
"""
import json
import random
import sys
from fractions import Fraction as F


def percentile(xs, p):
    h = (len(xs) - 1) * p
    i = int(h)  # floor: h >= 0
    if i + 1 >= len(xs):
        return F(xs[i])
    return xs[i] + (h - i) * (xs[i + 1] - xs[i])


def round_half_away(q):
    q = F(q)
    n = abs(q.numerator) * 2 + q.denominator
    r = n // (2 * q.denominator)
    return r if q >= 0 else -r


def value(points):
    cand = sorted(
        (p for p in points if not p.get("filtered_out") and p.get("price_cents") is not None),
        key=lambda p: p["price_cents"],
    )
    xs = [p["price_cents"] for p in cand]
    comps = cand
    if len(xs) >= 4:
        q1, q3 = percentile(xs, F(1, 4)), percentile(xs, F(3, 4))
        lo, hi = q1 - F(3, 2) * (q3 - q1), q3 + F(3, 2) * (q3 - q1)
        comps = [p for p in cand if lo <= p["price_cents"] <= hi]
    c = [p["price_cents"] for p in comps]
    n = len(c)
    sold = sum(1 for p in comps if p.get("price_type") == "sold")
    out = {"candidates": len(cand), "outliers": len(cand) - n, "comps": n, "sold": sold, "ask": n - sold}
    if n == 0:
        out.update(p10_cents=None, median_cents=None, p90_cents=None, mean_cents=None, confidence=1)
        out["confidence_parts"] = {"comps": 0, "reputation": 0, "sold_ratio": 0, "spread": 0, "capped": "few_comps"}
        return out
    p10, med, p90 = (round_half_away(percentile(c, F(k, 100))) for k in (10, 50, 90))
    mean = round_half_away(F(sum(c), n))
    w = sum(F(str(p.get("reputation_weight", 1.0))) for p in comps) / n
    s = F(sold, n)
    parts = {
        "comps": 3 if n >= 20 else 2 if n >= 10 else 1 if n >= 5 else 0,
        "reputation": 2 if w >= F(8, 10) else 1 if w >= F(1, 2) else 0,
        "sold_ratio": 2 if s >= F(8, 10) else 1 if s >= F(1, 2) else 0,
        "spread": 0,
        "capped": None,
    }
    if n >= 5 and med > 0:
        r = F(p90 - p10, med)
        parts["spread"] = 3 if r <= F(1, 4) else 2 if r <= F(1, 2) else 1 if r <= 1 else 0
    conf = parts["comps"] + parts["reputation"] + parts["sold_ratio"] + parts["spread"]
    if n < 3:
        parts["capped"], conf = "few_comps", min(conf, 3)
    elif s < F(1, 2):
        parts["capped"], conf = "mostly_ask", min(conf, 7)
    out.update(p10_cents=p10, median_cents=med, p90_cents=p90, mean_cents=mean,
               confidence=max(1, min(10, conf)), confidence_parts=parts)
    return out


def generate(seed, groups):
    rng = random.Random(seed)
    for g in range(groups):
        n = rng.choice([0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 19, 20, 21, 40, rng.randint(0, 300)])
        base = rng.choice([1, 99, 4500, 123457, 10**12])
        spread = rng.choice([0, 0.01, 0.2, 0.6, 1.5, 5])
        for i in range(n):
            cents = max(0, int(base * (1 + rng.uniform(-spread, spread) * rng.random())))
            if rng.random() < 0.05:
                cents *= rng.choice([20, 100])  # outliers
            p = {"kind": "price_point", "intake_id": "g%d" % g, "job_id": None, "external_id": str(i),
                 "adapter": "ebay_finding", "price_type": "sold" if rng.random() < rng.choice([0.3, 0.6, 0.9, 1]) else "ask",
                 "filtered_out": rng.random() < 0.1, "price_cents": cents if rng.random() > 0.02 else None}
            if rng.random() < 0.8:
                p["reputation_weight"] = rng.choice([1.0, 0.9, 0.8, 0.79, 0.5, 0.49, 0.2, 0])
            print(json.dumps(p))


def check(inp, outp):
    groups = {}
    for line in open(inp):
        p = json.loads(line)
        groups.setdefault(p["intake_id"], []).append(p)
    got = {}
    for line in open(outp):
        v = json.loads(line)
        got[v["intake_id"]] = v
    bad = 0
    for key, points in groups.items():
        want = value(points)
        have = got.pop(key, None)
        if have is None:
            print("%s: no valuation" % key)
            bad += 1
            continue
        for field, w in want.items():
            if have.get(field) != w:
                print("%s: %s: reference %r, valuate %r" % (key, field, w, have.get(field)))
                bad += 1
        # Invariants, whatever the reference says.
        if have["comps"]:
            if not have["p10_cents"] <= have["median_cents"] <= have["p90_cents"]:
                print("%s: p10 <= median <= p90 broken" % key)
                bad += 1
        if have["outliers"] + have["comps"] != have["candidates"] or not 1 <= have["confidence"] <= 10:
            print("%s: counts or confidence out of bounds" % key)
            bad += 1
    for key in got:
        print("%s: valuation of no group" % key)
        bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        generate(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(check(sys.argv[2], sys.argv[3]))
