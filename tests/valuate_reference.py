#!/usr/bin/python3
"""An independent implementation of valuate: DESIGN.md's "Valuation, exactly" in exact
rational arithmetic, and "Valuation with a target grade" in floating point, used by the
property test of valuate.

  valuate_reference.py gen SEED N        write N random groups of price points (NDJSON)
  valuate_reference.py gen-grade SEED N  the same with a job record per group whose
                                         attribution has a grade, and graded points
  valuate_reference.py check IN OUT      compare valuate's OUT with the reference on IN;
                                         print each difference, exit 1 if any

The plain method is compared exactly. The grade method is floating point (logarithms,
exponentials, weighted sums): the reference adds in the same order as valuate (points
sorted by moved log price, weight, curve distance), so the two agree to the last bit on
most groups; cents may differ by 1 where a result lies within a rounding error of a half
cent, and n_eff by 0.1 where it lies at a half tenth. Counts, parts and grades are exact.
"""
import datetime
import json
import math
import os
import random
import re
import sys
from fractions import Fraction as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "quality"))
from gen import CURVES, KNOTS, log_ratio  # noqa: E402  (the published curves' figures)


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
        out.update(method="plain", target_grade=None, n_eff=0.0, grades={}, tiers=None)
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
    q = [round_half_away(percentile(c, F(k, 100))) for k in (20, 40, 60, 80)]
    out.update(method="plain", target_grade=None, n_eff=float(n), grades=grade_counts(comps),
               tiers=dict(zip(("quick_sale", "fair_low", "fair_high", "premium"), q)))
    return out


def grade_counts(comps):
    counts = {}
    for p in comps:
        g = p.get("grade")
        key = g if isinstance(g, str) and 0 < len(g.encode()) <= 64 else "ungraded"
        counts[key] = counts.get(key, 0) + 1
    return counts


# ---- the grade method (DESIGN.md "Valuation with a target grade", as valuate does it) ----

SIGMA, TAU, KAPPA, UNGRADED, HALF_LIFE, OUT_SCALES, HUBER, RIDGE = 0.15, 0.2, 0.2, 0.5, 45.0, 3.0, 1.345, 0.05
STEP_VAR, SPREAD_CAP_SE, BEYOND_ERR, BEYOND_CAP = 0.01, 0.08, 0.25, 4
# Attribution grades the generator writes: text -> (lo, hi, canonical text).
TARGETS = {"MS60": (60, 60, "MS60"), "MS62": (62, 62, "MS62"), "MS63": (63, 63, "MS63"), "ms-64": (64, 64, "MS64"),
           "MS 65": (65, 65, "MS65"), "MS66": (66, 66, "MS66"), "MS67": (67, 67, "MS67"), "MS70": (70, 70, "MS70"),
           "AU58": (58, 58, "AU58"), "AU-50": (50, 50, "AU50"), "XF40": (40, 40, "XF40"), "EF45": (45, 45, "XF45"),
           "VF20": (20, 20, "VF20"), "F12": (12, 12, "F12"), "G4": (4, 4, "G4"), "PR69": (69, 69, "PR69"), "PR70": (70, 70, "PR70"),
           "Choice BU": (63, 64, "Choice BU"), "BU": (60, 63, "BU"), "Gem BU": (65, 66, "Gem BU"), "AU": (50, 58, "AU")}
SERIES = [("Morgan", "Morgan"), ("Peace", "Peace"), ("Walking", "Walking Liberty"), ("Mercury", "Mercury"),
          ("Kennedy", "Kennedy"), ("Franklin", "Franklin"), ("Barber", "Barber"), ("Buffalo", "Buffalo"),
          ("Lincoln", "Lincoln"), ("Washington", "Washington")]
SHELDON = [1, 2, 3, 4, 6, 8, 10, 12, 15, 20, 25, 30, 35, 40, 45, 50, 53, 55, 58] + list(range(60, 71))


# The series' last year of issue (curve.c's last_year), 0 while still struck.
LAST_YEAR = {"Morgan": 1921, "Peace": 1935, "Walking Liberty": 1947, "Mercury": 1945, "Franklin": 1963,
             "Barber": 1916, "Buffalo": 1938}
# Modern bullion programmes and issues (curve.c's modern_names): words, first year, gold, shared.
MODERN = [("silver eagle", 1986, 0, 0), ("gold eagle", 1986, 1, 1), ("platinum eagle", 1997, 1, 0),
          ("palladium eagle", 2017, 1, 0), ("american eagle", 1986, 0, 0), ("ase", 1986, 0, 0),
          ("maple leaf", 1979, 0, 0), ("maple leafs", 1979, 0, 0), ("britannia", 1987, 0, 1),
          ("krugerrand", 1967, 1, 0), ("philharmonic", 1989, 0, 0), ("philharmoniker", 1989, 0, 0),
          ("panda", 1982, 0, 0), ("kookaburra", 1990, 0, 0), ("kangaroo", 1986, 1, 1), ("nugget", 1986, 1, 1),
          ("libertad", 1981, 0, 0), ("lunar", 1996, 0, 1), ("gold buffalo", 2006, 1, 0),
          ("american buffalo", 2001, 0, 1), ("queen s beasts", 2016, 0, 0), ("first spouse", 2007, 1, 0),
          ("commemorative", 1982, 0, 1)]


def has_words(text, words):
    """Whether words stand in text as whole ASCII words, any run of other bytes between."""
    if not text:
        return False
    pat = r"(?<![A-Za-z0-9])" + r"[^A-Za-z0-9]+".join(map(re.escape, words.split())) + r"(?![A-Za-z0-9])"
    return re.search(pat, text, re.IGNORECASE | re.ASCII) is not None


def metal_of(text):
    gold = any(has_words(text, w) for w in ("gold", "platinum", "palladium", "oro"))
    silver = any(has_words(text, w) for w in ("silver", "argent", "silber", "plata", "argento"))
    return -1 if gold == silver else int(gold)


def curve_of(series, title, year=0):
    metal, gold = -1, -1
    weight = has_words(series, "oz") or has_words(title, "oz")
    for text in (series, title):
        if metal < 0 and text:
            metal = metal_of(text)
        for words, first, g, shared in MODERN:
            if gold < 0 and ((not shared or weight) if not year else year >= first) and has_words(text, words):
                gold = g
    if gold >= 0:
        return CURVES["modern gold" if (metal if metal >= 0 else gold) else "modern silver"]
    for text in (series, title):
        for word, name in SERIES:
            if text and word.lower() in text.lower():
                if LAST_YEAR.get(name, 0) and year > LAST_YEAR[name]:
                    return CURVES["modern gold" if metal == 1 else "modern silver"]
                return CURVES[name]
    return CURVES["generic"]


def knot_position(grade):
    """Where a grade lies among the curve's knots, counted in knots (as curve.c)."""
    if grade <= KNOTS[0]:
        return 0.0
    for i in range(1, len(KNOTS)):
        if grade <= KNOTS[i]:
            return i - 1 + (grade - KNOTS[i - 1]) / (KNOTS[i] - KNOTS[i - 1])
    return len(KNOTS) - 1 + (grade - KNOTS[-1])


def step(grade, direction):
    """The legal Sheldon number one step below (direction -1) or above (+1) a grade."""
    if direction < 0:
        below = [s for s in SHELDON if s < grade]
        return below[-1] if below else SHELDON[0]
    above = [s for s in SHELDON if s > grade]
    return above[0] if above else SHELDON[-1]


def days(text):
    try:
        t = datetime.datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")
    except (TypeError, ValueError):
        return None
    return (t - datetime.datetime(1970, 1, 1)).total_seconds() / 86400


def wpercentile(ms, total, p):
    """Each point at the middle of its weight; linear between, flat beyond the ends."""
    before, prev = 0.0, 0.0
    for i, (y, w) in enumerate(ms):
        at = (before + w / 2) / total
        if p <= at:
            return ms[0][0] if i == 0 else ms[i - 1][0] + (p - prev) / (at - prev) * (y - ms[i - 1][0])
        before += w
        prev = at
    return ms[-1][0]


def cents(y):
    c = math.exp(y)
    return 2**63 - 1 if not c < 9.0e18 else int(math.floor(c + 0.5))


def value_grade(points, target):
    lo_t, hi_t, text, curve = target
    cand = [p for p in points if not p.get("filtered_out") and p.get("price_cents") is not None]
    out = {"candidates": len(cand), "method": "grade", "target_grade": text}
    if not cand:
        out.update(outliers=0, comps=0, sold=0, ask=0, p10_cents=None, median_cents=None, p90_cents=None,
                   mean_cents=None, confidence=1, n_eff=0.0, grades={}, tiers=None,
                   confidence_parts={"comps": 0, "reputation": 0, "sold_ratio": 0, "spread": 0, "capped": "few_comps"})
        return out
    lt = log_ratio(curve, (lo_t + hi_t) / 2)
    ds = [days(p.get("sold_at")) for p in cand]
    newest = max((d for d in ds if d is not None), default=None)
    moved = []
    for p, d in zip(cand, ds):
        age = 0 if d is None or newest is None else newest - d
        rep = round(p.get("reputation_weight", 1) * 1000000) if p.get("reputation_weight") is not None else 1000000
        w = 2 ** (-min(age / HALF_LIFE, 1000)) * (rep if rep > 0 else 1) / 1000000
        y = math.log(p["price_cents"] if p["price_cents"] > 0 else 0.5)
        lo, hi = p.get("grade_lo"), p.get("grade_hi")
        lo, hi = (lo if lo is not None else hi), (hi if hi is not None else lo)
        if lo is not None:
            lr = log_ratio(curve, (lo + hi) / 2)
            dist = abs(lt - lr) + abs(log_ratio(curve, hi) - log_ratio(curve, lo)) / 2
            same = lo == lo_t and hi == hi_t and p.get("certifier") is not None
            y += lt - lr
            s = lr - lt
            w /= (SIGMA * SIGMA + (0 if same else TAU * TAU) + KAPPA * KAPPA * dist * dist
                  + STEP_VAR * abs(knot_position((lo + hi) / 2) - knot_position((lo_t + hi_t) / 2)))
        else:
            w *= UNGRADED / (SIGMA * SIGMA + TAU * TAU)
            s = 0.0
        moved.append([y, w, s, p, lo, hi, rep])
    moved.sort(key=lambda m: (m[0], m[1], m[2]))
    total = 0.0
    for m in moved:
        total += m[1]
    wmed = wpercentile([(m[0], m[1]) for m in moved], total, 0.5)
    dev = sorted(((abs(m[0] - wmed), m[1], m[2]) for m in moved))
    scale = 1.4826 * wpercentile([(d[0], d[1]) for d in dev], total, 0.5)
    scale = max(scale, SIGMA)
    kept = [m for m in moved if abs(m[0] - wmed) <= OUT_SCALES * scale]
    k = len(kept)
    total = sq = 0.0
    rep_sum = sold = near = at = 0
    # graded comps all on one side of the target: the curve's shared error over the gap
    sides = [m[2] for m in kept if m[4] is not None]
    beyond = 0.0
    if sides and max(sides) < 0:
        beyond = -max(sides)
    elif sides and min(sides) > 0:
        beyond = min(sides)
    near_lo, near_hi = step(lo_t, -1), step(hi_t, 1)
    for m in kept:
        total += m[1]
        sq += m[1] * m[1]
        rep_sum += m[6]
        sold += m[3].get("price_type") == "sold"
        lo, hi = m[4], m[5]
        if lo is not None and near_lo <= (lo + hi) / 2 <= near_hi:
            near += 1
        if lo == lo_t and hi == hi_t:
            at += 1
    mu = wpercentile([(m[0], m[1]) for m in kept], total, 0.5)
    slope = 0.0
    for _ in range(100):
        sw = sy = ss = 0.0
        us = []
        for m in kept:
            r = abs(m[0] - mu - slope * m[2])
            u = m[1] * (1 if r <= HUBER * scale else HUBER * scale / r)
            us.append(u)
            sw += u
            sy += u * m[0]
            ss += u * m[2]
        sxx = sxy = 0.0
        for m, u in zip(kept, us):
            d = m[2] - ss / sw
            sxx += u * d * d
            sxy += u * d * (m[0] - sy / sw)
        nslope = sxy / (sxx + RIDGE * sw)
        nxt = (sy - nslope * ss) / sw
        done = abs(nxt - mu) < 1e-12 and abs(nslope - slope) < 1e-12
        mu, slope = nxt, nslope
        if done:
            break
    for m in kept:
        m[0] -= slope * m[2]
    kept.sort(key=lambda m: (m[0], m[1], m[2]))
    ys = [(m[0], m[1]) for m in kept]
    mean = var = 0.0
    for m in kept:
        mean += m[1] * math.exp(m[0])
        var += m[1] * (m[0] - mu) * (m[0] - mu)
    p10, p90 = cents(wpercentile(ys, total, 0.1)), cents(wpercentile(ys, total, 0.9))
    tiers = [cents(wpercentile(ys, total, 0.2 * (i + 1))) for i in range(4)]
    med = min(max(cents(mu), p10), p90)
    n_eff = total * total / sq
    se = math.sqrt(var / total / n_eff)
    se_total = math.sqrt(se * se + BEYOND_ERR * BEYOND_ERR * beyond * beyond)
    parts = {"comps": 3 if n_eff >= 20 else 2 if n_eff >= 10 else 1 if n_eff >= 5 else 0,
             "reputation": 2 if rep_sum >= k * 800000 else 1 if rep_sum >= k * 500000 else 0,
             "sold_ratio": 2 if 5 * sold >= 4 * k else 1 if 2 * sold >= k else 0,
             "spread": 3 if se_total <= 0.025 else 2 if se_total <= 0.035 else 1 if se_total <= 0.05 else 0,
             "capped": None}
    conf = parts["comps"] + parts["reputation"] + parts["sold_ratio"] + parts["spread"]
    for cap, limit, applies in (("few_comps", 3, k < 3), ("no_grade_comps", 3, near < 2),
                                ("few_comps", 3, se > SPREAD_CAP_SE),
                                ("beyond_comps", BEYOND_CAP, se_total > SPREAD_CAP_SE), ("few_comps", 5, n_eff < 4),
                                ("mostly_ask", 7, 2 * sold < k)):
        if applies:
            parts["capped"], conf = cap, min(conf, limit)
            break
    out.update(outliers=len(cand) - k, comps=k, sold=sold, ask=k - sold, p10_cents=p10, median_cents=med, p90_cents=p90,
               mean_cents=cents(math.log(mean / total)), confidence=max(1, min(10, conf)), confidence_parts=parts,
               n_eff=n_eff, grades=grade_counts([m[3] for m in kept]),
               tiers=dict(zip(("quick_sale", "fair_low", "fair_high", "premium"), tiers)))
    return out


def generate_grade(seed, groups):
    rng = random.Random(seed)
    names = {v[2]: v for v in TARGETS.values()}
    for g in range(groups):
        series = rng.choice([w for _, w in SERIES] + ["Seated Liberty", None, "American Silver Eagle",
                                                      "Gold Eagle", "Krugerrand", "Britannia"])
        target = rng.choice(sorted(TARGETS))
        job = "job%d" % g
        year = rng.choice([1921, 1921, 1880, 2021, None])
        title = rng.choice([None, "Morgan Dollar", "Maple Leaf 1 oz .9999 Fine Silver", "1/10 oz Gold Eagle"])
        print(json.dumps({"kind": "job", "job_id": job, "intake_id": "g%d" % g,
                          "attribution": {"year": year, "series": series, "title": title, "grade": target}}))
        n = rng.choice([0, 1, 2, 3, 4, 5, 8, 12, 20, 50, rng.randint(0, 200)])
        base = rng.choice([5, 300, 4500, 123457])
        curve = curve_of(series, title, year or 0)
        for i in range(n):
            p = {"kind": "price_point", "intake_id": "g%d" % g, "job_id": job, "external_id": str(i),
                 "adapter": "ebay_finding", "price_type": "sold" if rng.random() < rng.choice([0.4, 0.9, 1]) else "ask",
                 "filtered_out": rng.random() < 0.05}
            r = rng.random()
            if r < 0.6:
                gr = rng.choice(SHELDON)
                p.update(grade=rng.choice([grade_text(gr), grade_text(gr)]), grade_lo=gr, grade_hi=gr,
                         certifier=rng.choice(["PCGS", "NGC", None]))
            elif r < 0.8:
                lo, hi, text = names[rng.choice(["Choice BU", "BU", "Gem BU", "AU"])]
                p.update(grade=text, grade_lo=lo, grade_hi=hi, certifier=None)
            else:
                gr = rng.choice(SHELDON)
                p.update(grade=None, grade_lo=None, grade_hi=None)
            price = base * math.exp(log_ratio(curve, gr if r < 0.6 else 63) + rng.gauss(0, 0.2))
            if rng.random() < 0.05:
                price *= rng.choice([0.01, 30])
            p["price_cents"] = int(price) if rng.random() > 0.02 else None
            if rng.random() < 0.9:
                p["sold_at"] = "2026-%02d-%02dT%02d:00:00Z" % (rng.randint(1, 11), rng.randint(1, 28), rng.randint(0, 23))
            if rng.random() < 0.5:
                p["reputation_weight"] = rng.choice([1.0, 0.8, 0.5, 0.2, 0])
            print(json.dumps(p))
        print(json.dumps({"kind": "job_end", "job_id": job, "intake_id": "g%d" % g}))


def grade_text(g):
    for lo, p in ((60, "MS"), (50, "AU"), (40, "XF"), (20, "VF"), (12, "F"), (8, "VG"), (4, "G"), (3, "AG"), (2, "FR"), (1, "PO")):
        if g >= lo:
            return "%s%d" % (p, g)


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


def close(field, want, have):
    """Whether valuate's value of a field matches the reference's (see the module's note)."""
    if isinstance(want, float) and isinstance(have, (int, float)):
        return abs(want - have) <= 0.051 + 1e-9
    if field.endswith("_cents") and isinstance(want, int) and isinstance(have, int) and not isinstance(want, bool):
        return abs(want - have) <= max(1, abs(want) * 1e-12)
    if field == "tiers" and isinstance(want, dict) and isinstance(have, dict):
        return want.keys() == have.keys() and all(close("x_cents", want[k], have[k]) for k in want)
    return want == have


def check(inp, outp):
    groups, targets = {}, {}
    for line in open(inp):
        p = json.loads(line)
        if p["kind"] == "job":
            a = p["attribution"]
            if a.get("grade") in TARGETS:
                lo, hi, text = TARGETS[a["grade"]]
                curve = CURVES["proof"] if text.startswith("PR") else curve_of(a.get("series"), a.get("title"), a.get("year") or 0)
                targets[p["intake_id"]] = (lo, hi, text, curve)
        elif p["kind"] == "price_point":
            groups.setdefault(p["intake_id"], []).append(p)
    got = {}
    for line in open(outp):
        v = json.loads(line)
        if v["kind"] == "valuation":
            got[v["intake_id"]] = v
    bad = 0
    for key, points in groups.items():
        want = value_grade(points, targets[key]) if key in targets else value(points)
        have = got.pop(key, None)
        if have is None:
            print("%s: no valuation" % key)
            bad += 1
            continue
        for field, w in want.items():
            if not close(field, w, have.get(field)):
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
        if sum(have["grades"].values()) != have["comps"]:
            print("%s: grades do not add up to the comps" % key)
            bad += 1
    for key in got:
        print("%s: valuation of no group" % key)
        bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        generate(int(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1] == "gen-grade":
        generate_grade(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(check(sys.argv[2], sys.argv[3]))
