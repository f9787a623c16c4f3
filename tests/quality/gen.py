#!/usr/bin/python3
"""Synthetic coin markets with a known truth, for the quality benchmark (make quality).

  gen.py gen [knobs] [--truth FILE] > stream.ndjson
                        one job per market: job record, listings, job_end; FILE gets each
                        market's true price today and the oracle's estimate
  gen.py score TRUTH GRADE PLAIN [--knobs TEXT]   the report table (see quality.sh)

A market is one coin (series, year, mint mark) at one target grade. Its grade curve is a
published guide's (ratios to MS63, the figures of stages/lib/curve.c) perturbed per market;
the listings a search returns are the coin at mixed grades, written the many ways sellers
write them, plus what is not this coin: decoys, other mint marks, modern issues, lots,
problem coins, designations, and wild outliers (typos, shipping scams) among real sales.
Some markets drift over the window; the truth is today's price. Every knob is a flag and
is printed in the report header, so that nobody tunes the method to one market shape.
"""
import argparse
import bisect
import json
import math
import random
import sys

KNOTS = [4, 8, 12, 20, 40, 50, 55, 58, 60, 62, 63, 64, 65, 66, 67, 68, 69, 70]
# Published-guide ratios to MS63 (the same facts as stages/lib/curve.c).
CURVES = {
    "Morgan": [0.30, 0.31, 0.33, 0.36, 0.38, 0.41, 0.45, 0.49, 0.52, 0.80, 1, 1.26, 1.52, 2.69, 8.9, 50, 100, 200],
    "Peace": [0.45, 0.47, 0.50, 0.53, 0.56, 0.59, 0.62, 0.65, 0.67, 0.85, 1, 1.19, 1.78, 4.07, 16.3, 100, 200, 400],
    "Walking Liberty": [0.04, 0.045, 0.048, 0.05, 0.06, 0.13, 0.25, 0.35, 0.43, 0.75, 1, 1.67, 3.73, 9.33, 33.3, 150, 300, 600],
    "Mercury": [0.15, 0.16, 0.17, 0.19, 0.22, 0.25, 0.29, 0.32, 0.41, 0.73, 1, 1.59, 2.95, 7.27, 31.8, 150, 300, 600],
    "Kennedy": [0.75, 0.75, 0.76, 0.77, 0.78, 0.80, 0.82, 0.85, 0.88, 0.94, 1, 1.30, 2.1, 5.4, 36, 300, 600, 1200],
    "Franklin": [0.68, 0.68, 0.69, 0.70, 0.77, 0.80, 0.82, 0.85, 0.93, 0.97, 1, 1.40, 3.0, 15, 180, 400, 800, 1600],
    "Barber": [0.025, 0.035, 0.055, 0.10, 0.18, 0.40, 0.46, 0.55, 0.62, 0.80, 1, 1.40, 2.0, 3.0, 8, 20, 40, 80],
    "Buffalo": [0.05, 0.06, 0.08, 0.11, 0.14, 0.25, 0.33, 0.45, 0.60, 0.80, 1, 1.20, 1.43, 3.0, 12, 200, 400, 800],
    "Lincoln": [0.06, 0.08, 0.10, 0.12, 0.24, 0.30, 0.35, 0.40, 0.50, 0.75, 1, 2.0, 4.7, 9.4, 31, 150, 300, 600],
    "Washington": [0.60, 0.60, 0.61, 0.62, 0.63, 0.65, 0.67, 0.70, 0.75, 0.88, 1, 1.30, 2.5, 6.0, 25, 150, 300, 600],
    "generic": [0.15, 0.17, 0.20, 0.28, 0.38, 0.48, 0.55, 0.62, 0.70, 0.85, 1, 1.40, 2.4, 5.0, 15, 60, 120, 240],
    # 1926 Standing Liberty quarter, a series valuate has no curve of its own for (it prices
    # it on its generic curve): Good $9, VF $20, XF $40, MS60 $175, MS63 $275
    # (silverrecyclers.com, 1926 quarter value); VG8, F12, AU50-58 and MS62 log-linear between
    # those. No figure above MS63 was found: its markets stop at MS63 (TOP below), and the
    # knots above are the generic curve's, never reached.
    "Standing Liberty": [0.0327, 0.0400, 0.0488, 0.0727, 0.1455, 0.304, 0.440, 0.549, 0.636, 0.860, 1,
                         1.40, 2.4, 5.0, 15, 60, 120, 240],
}
# Modern bullion coins and modern issues (the figures of stages/lib/curve.c's modern curves,
# with their sources there): flat to MS68, a small step to MS69, the big one to MS70.
CURVES["modern silver"] = [0.85, 0.86, 0.87, 0.88, 0.90, 0.92, 0.94, 0.96, 0.97, 0.99, 1, 1.005, 1.01, 1.02, 1.04, 1.08,
                           1.25, 2.5]
CURVES["modern gold"] = [0.94, 0.945, 0.95, 0.955, 0.96, 0.97, 0.975, 0.98, 0.985, 0.995, 1, 1.002, 1.005, 1.01, 1.015,
                         1.025, 1.05, 1.2]
# A proof, whatever its series (the figures of stages/lib/curve.c's proof curve): ratios to PR63.
PROOF = [0.25, 0.27, 0.30, 0.34, 0.40, 0.45, 0.50, 0.55, 0.60, 0.80, 1, 1.35, 2.0, 2.9, 4.2, 5.6, 7.0, 15]
CURVES["proof"] = PROOF
# The highest grade a series' markets reach (its guide's last figure); others reach MS66.
TOP = {"Standing Liberty": 63}
# series: year, mint mark, other mint marks, denomination, words of the title, MS63 price ($),
# a modern issue of the same design (year, words), designations that change its price.
COINS = [
    ("Morgan", 1921, "S", ["D", ""], "dollar", ["Morgan Silver Dollar", "Morgan Dollar", "Morgan $1"], 75,
     (2021, "Morgan Silver Dollar 100th Anniversary"), ["DMPL", "PL"]),
    ("Morgan", 1884, "O", ["CC", "S", ""], "dollar", ["Morgan Silver Dollar", "Morgan Dollar", "$1 Morgan"], 70,
     (2023, "Morgan Silver Dollar"), ["DMPL", "PL"]),
    ("Peace", 1922, "", ["D", "S"], "dollar", ["Peace Silver Dollar", "Peace Dollar", "Peace $1"], 55,
     (2021, "Peace Silver Dollar 100th Anniversary"), []),
    ("Walking Liberty", 1935, "", ["D", "S"], "half_dollar",
     ["Walking Liberty Half Dollar", "Walking Liberty 50c", "Walker Half"], 95,
     (2023, "American Silver Eagle Walking Liberty 1 oz"), []),
    ("Mercury", 1944, "", ["D", "S"], "dime", ["Mercury Dime", "Mercury 10c", "Winged Liberty Dime"], 14,
     (2016, "Mercury Dime Centennial Gold"), ["FB"]),
    ("Kennedy", 1964, "", ["D"], "half_dollar", ["Kennedy Half Dollar", "Kennedy Half", "Kennedy 50c silver"], 16,
     (2014, "Kennedy Half 50th Anniversary"), []),
    ("Franklin", 1963, "", ["D"], "half_dollar", ["Franklin Half Dollar", "Franklin Half", "Franklin 50c"], 22,
     None, ["FBL"]),
    ("Barber", 1908, "O", ["", "D", "S"], "quarter", ["Barber Quarter", "Barber 25c", "Liberty Head Quarter"], 420,
     None, []),
    ("Buffalo", 1937, "", ["D", "S"], "nickel", ["Buffalo Nickel", "Indian Head Buffalo 5c", "Buffalo 5 cent"], 24,
     (2001, "American Buffalo Commemorative"), []),
    ("Lincoln", 1944, "D", ["", "S"], "penny", ["Lincoln Wheat Cent", "Lincoln Cent", "Wheat Penny"], 3.5,
     (2009, "Lincoln Cent Bicentennial"), ["RD", "RB", "BN"]),
    ("Washington", 1964, "D", ["", "S"], "quarter", ["Washington Quarter", "Washington 25c silver", "Silver Quarter"], 12,
     (1999, "Washington State Quarter"), []),
]
# Coins valuate has no curve of its own for (--coins unguided): priced on its generic curve.
UNGUIDED = [
    ("Standing Liberty", 1926, "", ["D", "S"], "quarter",
     ["Standing Liberty Quarter", "SLQ", "Standing Liberty 25c"], 275,
     (2016, "Standing Liberty Quarter Centennial Gold"), ["FH"]),
]
# Proofs (--coins proof), priced on the proof curve whatever their series, at the top
# grades where most of them sell; every one a deep cameo, as modern proofs are.
PROOF_COINS = [
    ("American Silver Eagle", 2019, "W", ["S"], "dollar",
     ["American Silver Eagle Proof", "Proof Silver Eagle", "ASE Proof 1 oz"], 10, None, []),
    ("Kennedy", 1999, "S", ["D"], "half_dollar", ["Kennedy Half Dollar Proof", "Kennedy 50c Silver Proof"], 3.6,
     None, []),
]
# Modern bullion coins (--coins bullion), graded almost only at the top and priced on the
# modern curve of their metal; a raw BU coin sells at about its MS63 price.
BULLION_COINS = [
    ("American Silver Eagle", 2021, "", [], "dollar",
     ["American Silver Eagle 1 oz", "Silver Eagle 1 oz .999 Fine Silver", "ASE $1 Silver Eagle"], 40,
     (2020, "American Silver Eagle 1 oz"), []),
    ("Gold Eagle", 2020, "", [], None, ["1/10 oz American Gold Eagle", "American Gold Eagle $5 1/10 oz", "Gold Eagle 1/10 oz"],
     450, (2019, "1/10 oz American Gold Eagle"), []),
    ("Maple Leaf", 2019, "", [], None,
     ["Canada 1 oz Silver Maple Leaf", "Silver Maple Leaf $5 1 oz", "Canadian Maple Leaf 1 oz Silver"], 38,
     (2018, "Canada 1 oz Silver Maple Leaf"), []),
    ("Britannia", 2022, "", [], None, ["Great Britain Silver Britannia 1 oz", "Britannia 1 oz .999 Silver", "UK Britannia 1 oz Silver"],
     38, (2021, "Great Britain Silver Britannia 1 oz"), []),
    ("Krugerrand", 2022, "", [], None, ["South Africa Gold Krugerrand 1 oz", "Krugerrand 1 oz Gold", "1 oz Gold Krugerrand"],
     2700, (2021, "South Africa Gold Krugerrand 1 oz"), []),
]
BULLION_KEY = {"Gold Eagle": "modern gold", "Krugerrand": "modern gold"}
BULLION_TARGETS = [63, 65, 67, 68, 69, 69, 69, 70, 70]
BULLION_LEGAL = list(range(60, 71))
PROOF_TARGETS = [66, 67, 68, 69, 69, 70, 70]
PROOF_LEGAL = [60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70]
TARGETS = [20, 30, 40, 45, 50, 55, 58, 60, 62, 63, 63, 64, 64, 65, 65, 66]
LEGAL = [4, 6, 8, 10, 12, 15, 20, 25, 30, 35, 40, 45, 50, 53, 55, 58, 60, 61, 62, 63, 64, 65, 66, 67]
PREFIX = [(60, "MS"), (50, "AU"), (40, "XF"), (20, "VF"), (12, "F"), (8, "VG"), (4, "G")]
CERTS = ["PCGS", "NGC", "PCGS", "NGC", "ANACS", "ICG"]
NOISE_WORDS = ["", "", "Nice", "Beautiful", "Toned", "Original", "Lustrous", "Rare", "Great Eye Appeal",
               "Free Shipping", "Key Date?", "Estate Find", "L@@K", "WOW"]


def log_ratio(ratios, g):
    """ln R(g): log-linear between knots, flat below, last slope above (as valuate)."""
    if g <= KNOTS[0]:
        return math.log(ratios[0])
    i = bisect.bisect_left(KNOTS, g, 0, len(KNOTS) - 1)
    i = max(1, min(i, len(KNOTS) - 1))
    a, b = math.log(ratios[i - 1]), math.log(ratios[i])
    return a + (g - KNOTS[i - 1]) / (KNOTS[i] - KNOTS[i - 1]) * (b - a)


def perturb(rng, ratios, jitter, top=False):
    """A market's own curve: the guide's, bent by a smooth random walk and a tilt, then
    scaled back to 1 at MS63. (The bend is not zeroed at MS63: the walk is far from 0 by
    then, and zeroing it there made a kink at MS63 alone, some 25 % off its neighbours.)"""
    out, walk = [], 0.0
    tilt = rng.gauss(0, jitter / 2)
    for k, r in zip(KNOTS, ratios):
        # (above MS68 only where markets reach there: the other markets draw as before)
        if k <= 68 or top:
            walk += rng.gauss(0, jitter / 2)
        bend = walk + tilt * (k - 63) / 10
        out.append(r * math.exp(bend))
    # keep the curve rising with the grade
    for i in range(1, len(out)):
        out[i] = max(out[i], out[i - 1] * 1.001)
    m63 = out[KNOTS.index(63)]
    return [r / m63 for r in out]


def grade_name(g, proof=False):
    if proof:
        return "PR%d" % g
    for lo, p in PREFIX:
        if g >= lo:
            return "%s%d" % (p, g)
    return "G%d" % g


def adjectival(rng, g):
    """An adjectival grade a seller might write for true grade g, as (text, lo, hi)."""
    if g >= 65:
        return rng.choice([("Gem BU", 65, 66), ("Gem Uncirculated", 65, 66), ("GEM BU", 65, 66)])
    if g >= 63:
        return rng.choice([("Choice BU", 63, 64), ("Ch BU", 63, 64), ("Choice Uncirculated", 63, 64)])
    if g >= 60:
        return rng.choice([("BU", 60, 63), ("Brilliant Uncirculated", 60, 63), ("Unc", 60, 63)])
    if g >= 50:
        return rng.choice([("AU", 50, 58), ("About Uncirculated", 50, 58), ("Almost Uncirculated", 50, 58)])
    if g >= 40:
        return rng.choice([("XF", 40, 45), ("Extra Fine", 40, 45), ("EF", 40, 45)])
    if g >= 20:
        return rng.choice([("VF", 20, 35), ("Very Fine", 20, 35)])
    if g >= 12:
        return ("Fine", 12, 15)
    return ("VG", 8, 10)


def numeric(rng, g, proof=False):
    """A numeric grade written as sellers do: MS63, MS-63, MS 63, ms63 (PR69, PF-70 DCAM)."""
    name = grade_name(g, proof)
    if proof:
        name = rng.choice(["PR", "PF", "PR"]) + name[2:]
    p, n = name.rstrip("0123456789"), name[len(name.rstrip("0123456789")):]
    sep = rng.choice(["", "", "-", " "])
    text = p + sep + n
    text = text.lower() if rng.random() < 0.1 else text
    if proof:
        text += rng.choice([" DCAM", " Deep Cameo", " Ultra Cameo", "DCAM", " UCAM"])
    return text


def canonical(text):
    """The canonical form DESIGN.md gives an adjectival grade."""
    t = text.lower()
    for words, name in (("gem", "Gem BU"), ("ch", "Choice BU"), ("brilliant", "BU"), ("unc", "BU"), ("bu", "BU"),
                        ("about", "AU"), ("almost", "AU"), ("au", "AU"), ("extra", "XF"), ("xf", "XF"), ("ef", "XF"),
                        ("very", "VF"), ("vf", "VF"), ("fine", "F"), ("vg", "VG")):
        if t.startswith(words):
            return name
    return text


def date_text(rng, year, mint):
    if not mint:
        return str(year)
    return rng.choice(["%d-%s", "%d %s", "%d-%s", "%d%s", "%d-%s"]) % (year, mint)


def market(rng, idx, k):
    """One market: its coin, target grade, curve, and what it generates."""
    coins = {"guided": COINS, "unguided": UNGUIDED, "all": COINS + UNGUIDED, "proof": PROOF_COINS,
             "bullion": BULLION_COINS}[k.coins]
    coin = coins[rng.randrange(len(coins))]
    series, year, mint, others, denom, words, base, modern, desigs = coin
    proof = coin in PROOF_COINS
    bullion = coin in BULLION_COINS
    key = "proof" if proof else BULLION_KEY.get(series, "modern silver") if bullion else series
    curve = perturb(rng, CURVES[key], k.curve_jitter, proof or bullion)
    top = 70 if proof or bullion else TOP.get(series, 67)
    target = rng.choice(PROOF_TARGETS if proof else BULLION_TARGETS if bullion else [t for t in TARGETS if t <= top])
    base = base * math.exp(rng.gauss(0, 0.3))
    noise = rng.uniform(*k.noise)
    drift = rng.uniform(-k.drift, k.drift) if rng.random() < k.drift_share else 0.0
    near = rng.uniform(*k.near)
    return dict(proof=proof, bullion=bullion, key=key, near=near, idx=idx, top=top, series=series, year=year, mint=mint, others=others, denom=denom, words=words,
                base=base, modern=modern, desigs=desigs, curve=curve, target=target, noise=noise, drift=drift)


def price_at(m, g):
    return m["base"] * math.exp(log_ratio(m["curve"], g))


def comp_grade(rng, m):
    """The true grade of a listing of this coin: near the target half the time, else the market's spread."""
    legal = PROOF_LEGAL if m["proof"] else BULLION_LEGAL if m["bullion"] else LEGAL
    t = legal.index(m["target"]) if m["target"] in legal else legal.index(63)
    if rng.random() < m["near"]:
        i = t + rng.choice([-2, -1, -1, 0, 0, 0, 1, 1, 2])
    elif m["bullion"]:
        i = rng.randrange(len(legal))
    else:
        i = rng.choice(range(legal.index(63 if m["proof"] else 20), len(legal) - 1))
    return min(legal[max(0, min(len(legal) - 1, i))], m["top"])


def title_for(rng, m, grade_part, extra="", year=None, mint=None, words=None):
    y = m["year"] if year is None else year
    mm = m["mint"] if mint is None else mint
    w = rng.choice(m["words"]) if words is None else words
    d = date_text(rng, y, mm)
    noise = rng.choice(NOISE_WORDS)
    shapes = [
        "{d} {w} {g} {x} {n}", "{d} {w} - {g} {x} {n}", "{g} {d} {w} {x} {n}", "{d} {w} {x} {n} {g}",
        "{D} {W} {g} {x}", "{d} {w}, {g}, {x} {n}",
    ]
    s = rng.choice(shapes).format(d=d, w=w, g=grade_part, x=extra, n=noise, D=d.upper(), W=w.upper())
    return " ".join(s.replace(" ,", ",").split())


def clean_listing(rng, m, k, g, t):
    """A listing of this coin at true grade g: (title, facts)."""
    r = rng.random()
    if r < k.certified:
        cert = rng.choice(CERTS)
        gp = "%s %s" % (cert, numeric(rng, g, m["proof"])) if rng.random() < 0.8 or m["proof"] else "%s %d" % (cert, g)
        if rng.random() < 0.15:
            gp += rng.choice([" CAC", "+", " Gold Shield", " OGH"])
        return title_for(rng, m, gp), (grade_name(g, m["proof"]), g, g, cert)
    r -= k.certified
    if r < k.raw_numeric:
        # raw coins: the seller's grade is often a step or two optimistic
        said = g
        legal = PROOF_LEGAL if m["proof"] else BULLION_LEGAL if m["bullion"] else LEGAL
        if rng.random() < 0.5:
            j = legal.index(g) + rng.choice([1, 1, 2])
            said = legal[min(j, len(legal) - 1)]
        return title_for(rng, m, numeric(rng, said, m["proof"]) + rng.choice(["", " raw", " ungraded"])), \
            (grade_name(said, m["proof"]), said, said, None)
    r -= k.raw_numeric
    if r < k.adjectival and m["proof"]:
        return title_for(rng, m, rng.choice(["Proof", "Gem Proof DCAM", "Proof Deep Cameo"])), (None, None, None, None)
    if r < k.adjectival:
        text, lo, hi = adjectival(rng, g)
        extra = rng.choice(["", "", "not cleaned", "NO PROBLEMS", "uncleaned", "original skin"])
        return title_for(rng, m, text, extra), (canonical(text), lo, hi, None)
    extra = rng.choice(["", "Circulated", "As Shown", "Old US Coin", "silver", "not cleaned"])
    return title_for(rng, m, "", extra), (None, None, None, None)


def junk_listing(rng, m, k, today):
    """Something a search returns that is not this coin: (title, price) -- priced as what it is."""
    kind = rng.choice(["decoy", "wrong_mint", "modern", "lot", "problem", "designation", "proof_other"])
    g = comp_grade(rng, m)
    p = price_at(m, g)
    if kind == "decoy":
        what = rng.choice(["Replica", "COPY", "Token", "Holder Only", "Empty PCGS holder", "Commemorative Medal"])
        return title_for(rng, m, numeric(rng, g), what), rng.uniform(2, 12)
    if kind == "wrong_mint" and m["others"]:
        other = rng.choice(m["others"])
        return title_for(rng, m, "PCGS " + numeric(rng, g), mint=other), p * rng.choice([0.5, 0.7, 1.6, 3, 8])
    if kind == "modern" and m["modern"]:
        y, w = m["modern"]
        return title_for(rng, m, "PCGS " + rng.choice(["MS70", "MS69", "PR70 DCAM"]), year=y, mint="", words=w), \
            rng.uniform(60, 250)
    if kind == "lot":
        n = rng.choice([2, 3, 5, 10, 20])
        how = rng.choice(["Lot of %d" % n, "(%d)" % n, "x%d" % n, "%d coins" % n,
                          "Roll of 20" if n == 20 else "lot of %d" % n])
        return title_for(rng, m, rng.choice(["", "BU", "AU"]), how), p * n * rng.uniform(0.7, 0.95)
    if kind == "problem":
        what = rng.choice(["Details Cleaned", "cleaned", "holed", "bent", "damaged", "scratched", "Details"])
        return title_for(rng, m, "%s %s" % (rng.choice(["AU", "XF", "VF", "MS"]), what)), p * rng.uniform(0.3, 0.6)
    if kind == "designation" and m["desigs"] and g >= 60:
        d = rng.choice(m["desigs"])
        return title_for(rng, m, "PCGS %s %s" % (numeric(rng, g), d)), p * rng.uniform(1.5, 4)
    return title_for(rng, m, "", rng.choice(["Replica", "copy"])), rng.uniform(2, 12)


def iso(day):
    s = int(day * 86400)
    y, rem = 2026, s
    # days since 2026-01-01; keep it simple: 2026 is not a leap year
    mdays = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    d = rem // 86400
    mo = 0
    while d >= mdays[mo]:
        d -= mdays[mo]
        mo += 1
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (y, mo + 1, d + 1, rem % 86400 // 3600, rem % 3600 // 60, rem % 60)


def generate(k, out, truth_out):
    rng = random.Random(k.seed)
    today = 330.0  # 2026-11-27
    for idx in range(k.markets):
        m = market(rng, idx, k)
        job = "q%d-%d-%d" % (k.seed, k.comps, idx)
        attribution = {"year": m["year"], "mintmark": m["mint"] or "P", "denomination": m["denom"],
                       "series": m["series"], "title": m["words"][0],
                       "grade": grade_name(m["target"], m["proof"]) + (" DCAM" if m["proof"] else ""),
                       "variety": None}
        points, clean, true_grades = [], [], {}
        ts = m["target"]
        n_junk = int(round(k.comps * k.junk / (1 - k.junk)))
        for i in range(k.comps + n_junk):
            day = today - rng.uniform(0, k.window)
            trend = math.exp(m["drift"] * (day - today) / k.window)
            if i < k.comps:
                g = comp_grade(rng, m)
                title, facts = clean_listing(rng, m, k, g, ts)
                price = price_at(m, g) * trend * math.exp(rng.gauss(0, m["noise"]))
                wild = rng.random() < k.outliers
                if wild:
                    price *= rng.choice([0.05, 0.1, 8, 10, 25])
                else:
                    clean.append((g, price, day))
                    true_grades["%d" % i] = g
                junk = False
            else:
                title, price = junk_listing(rng, m, k, today)
                price *= trend
                facts, junk = (None, None, None, None), True
            ptype = "sold" if rng.random() > k.asks else "ask"
            p = {"kind": "price_point", "job_id": job, "intake_id": job, "source_id": "ebay", "adapter": "ebay_finding",
                 "external_id": "%d" % i, "title": title, "url": None, "condition": None, "price_type": ptype,
                 "amount": "%.2f" % max(price, 0.01), "currency": "USD", "shipping_amount": None,
                 "shipping_currency": None, "converted_usd": None,
                 "sold_at": iso(day) if ptype == "sold" else None, "reputation_weight": 1.0, "raw": {}}
            if k.facts == "known":
                p.update(grade=facts[0], grade_lo=facts[1], grade_hi=facts[2], certifier=facts[3])
                if junk:
                    p.update(filtered_out=True, filter_reason="known_junk")
            points.append(p)
        rng.shuffle(points)
        if out:
            out.write(json.dumps({"kind": "job", "job_id": job, "intake_id": job, "source_id": "ebay", "attempt": 1,
                                  "source": {"name": "eBay", "adapter_type": "ebay_finding", "reputation_weight": 1.0},
                                  "attribution": attribution, "rules": [], "fx_rates": {}}) + "\n")
            for p in points:
                out.write(json.dumps(p) + "\n")
            out.write(json.dumps({"kind": "job_end", "job_id": job, "intake_id": job, "pages": 1, "calls": 1,
                                  "items": len(points)}) + "\n")
        if truth_out:
            truth = price_at(m, ts)
            truth_out.write(json.dumps({"job_id": job, "truth_cents": truth * 100, "oracle_cents": oracle(m, clean, ts) * 100,
                                        "published_cents": oracle(dict(m, curve=CURVES[m["key"]]), clean, ts) * 100,
                                        "series": m["series"], "target": ts, "drift": m["drift"],
                                        "curve": m["curve"], "grades": true_grades}) + "\n")


def oracle(m, clean, t):
    """Knows the clean comps, their true grades and the market's own curve: each moved to
    the target exactly, then the recency-weighted median (45-day half-life)."""
    if not clean:
        return float("nan")
    newest = max(d for _, _, d in clean)
    xs = sorted((p * math.exp(log_ratio(m["curve"], t) - log_ratio(m["curve"], g)), 2 ** (-(newest - d) / 45))
                for g, p, d in clean)
    total, acc = sum(w for _, w in xs), 0.0
    for x, w in xs:
        acc += w
        if acc >= total / 2:
            return x
    return xs[-1][0]


def quantile(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    h = (len(xs) - 1) * q
    i = int(h)
    return xs[i] if i + 1 >= len(xs) else xs[i] + (h - i) * (xs[i + 1] - xs[i])


def score(args):
    truth = {}
    for line in open(args.truth):
        t = json.loads(line)
        truth[t["job_id"]] = t
    rows = {}
    for name, path in (("grade", args.grade), ("plain", args.plain)):
        for line in open(path):
            v = json.loads(line)
            if v.get("kind") != "valuation":
                continue
            t = truth[v["job_id"]]
            comps = int(t["job_id"].split("-")[1])
            err = float("inf") if v["median_cents"] is None else abs(v["median_cents"] - t["truth_cents"]) / t["truth_cents"]
            rows.setdefault((comps, name), []).append((err, v["confidence"]))
            if name == "grade":
                o = abs(t["oracle_cents"] - t["truth_cents"]) / t["truth_cents"]
                rows.setdefault((comps, "oracle"), []).append((o, None))
    print("%-6s %-7s %8s %8s %8s %9s   %s" % ("comps", "method", "markets", "median", "p90", "within10", "median error by confidence (markets)"))
    summary = {}
    for comps in sorted({c for c, _ in rows}):
        for name in ("grade", "plain", "oracle"):
            r = rows.get((comps, name), [])
            errs = [e for e, _ in r]
            med, p90 = quantile(errs, 0.5), quantile(errs, 0.9)
            within = sum(1 for e in errs if e <= 0.10) / max(1, len(errs))
            by = ""
            if name != "oracle":
                groups = {}
                for e, c in r:
                    band = "1-3" if c <= 3 else "4-5" if c <= 5 else "6-7" if c <= 7 else "8-10"
                    groups.setdefault(band, []).append(e)
                by = "  ".join("%s: %.1f%% (%d)" % (b, 100 * quantile(groups[b], 0.5), len(groups[b]))
                               for b in ("1-3", "4-5", "6-7", "8-10") if b in groups)
            print("%-6d %-7s %8d %7.1f%% %7.1f%% %8.0f%%   %s" % (comps, name, len(errs), 100 * med, 100 * p90, 100 * within, by))
            summary["%s_%d" % (name, comps)] = {"median": med, "p90": p90, "within10": within}
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(summary, f)


def knobs(argv):
    p = argparse.ArgumentParser(prog="gen.py")
    p.add_argument("cmd", choices=["gen", "score"])
    p.add_argument("files", nargs="*")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--markets", type=int, default=200)
    p.add_argument("--comps", type=int, default=20, help="listings of the coin itself, per market")
    p.add_argument("--junk", type=float, default=0.3, help="share of listings that are not this coin")
    p.add_argument("--outliers", type=float, default=0.04, help="share of the coin's sales at wild prices")
    p.add_argument("--noise", type=float, nargs=2, default=[0.08, 0.2], help="range of a market's price spread within a grade (log sd)")
    p.add_argument("--curve-jitter", type=float, default=0.15, help="log sd of a market's curve around the guide's")
    p.add_argument("--near", type=float, nargs=2, default=[0.6, 0.9],
                   help="range of a market's share of listings within two grades of the target (the rest: any grade VF20-MS66)")
    p.add_argument("--drift", type=float, default=0.2, help="largest log price change over the window")
    p.add_argument("--drift-share", type=float, default=0.3, help="share of markets that drift")
    p.add_argument("--window", type=float, default=90, help="days of sales")
    p.add_argument("--asks", type=float, default=0.05, help="share of asking prices")
    p.add_argument("--certified", type=float, default=0.45, help="share of slabbed listings (numeric grade)")
    p.add_argument("--raw-numeric", type=float, default=0.15, help="share of raw coins with a numeric grade (often optimistic)")
    p.add_argument("--adjectival", type=float, default=0.2, help="share with an adjectival grade (BU, Choice BU, AU, XF)")
    p.add_argument("--coins", choices=["guided", "unguided", "all", "proof", "bullion"], default="guided",
                   help="guided: series with a built-in curve; unguided: series priced on the generic curve; proof: modern proofs at PR66-70, on the proof curve; bullion: modern bullion coins (Silver and Gold Eagles, Maple Leafs, Britannias, Krugerrands) at MS63-70, on the modern curves")
    p.add_argument("--facts", choices=["titles", "known"], default="titles",
                   help="titles: filter-junk reads the titles; known: the points carry the true facts")
    p.add_argument("--summary", help="score: also write the figures as JSON here")
    p.add_argument("--truth", help="gen: write the truth of each market here")
    p.add_argument("--print-knobs", action="store_true", help="gen: print the knobs and stop")
    return p.parse_args(argv)


if __name__ == "__main__":
    k = knobs(sys.argv[1:])
    if k.cmd == "gen" and k.print_knobs:
        for name, value in sorted(vars(k).items()):
            if name not in ("cmd", "files", "summary", "truth", "print_knobs", "seed", "comps"):
                print("--%s %s" % (name.replace("_", "-"), " ".join(map(str, value)) if isinstance(value, list) else value))
    elif k.cmd == "gen":
        with open(k.truth or "/dev/null", "w") as truth_out:
            generate(k, sys.stdout, truth_out)
    else:
        k.truth, k.grade, k.plain = k.files
        score(k)
