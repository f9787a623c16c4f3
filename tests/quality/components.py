#!/usr/bin/python3
"""Where the grade method's error comes from: the method (the reference implementation of
valuate's grade method, tests/valuate_reference.py) run on the benchmark's markets with one
source of error taken away at a time, since the generator knows each market's own curve and
each clean listing's true grade.

  components.py [--bin DIR] [--seeds "1 2 3"] [--markets N] [--sizes "8 20 50"] [GEN KNOBS...]

Rows: as measured; only the clean listings (what filter-junk and the outlier rule miss);
true grades (each clean listing at its true grade, as if certified: no seller's optimism,
no adjectival ranges); the market's own curve (no curve error); both; all three. What is
left in the last row is price noise and drift, which the oracle shares.
"""
import json
import os
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.dirname(here))
import valuate_reference as R  # noqa: E402
from gen import quantile  # noqa: E402


def markets(bin_dir, seeds, sizes, count, knobs):
    """(comps, points, target, truth) per market, through filter-junk | normalize-usd."""
    gen = os.path.join(here, "gen.py")
    for n in sizes:
        for seed in seeds:
            with tempfile.TemporaryDirectory() as tmp:
                truth_path = os.path.join(tmp, "truth")
                with open(os.path.join(tmp, "stream"), "w") as stream:
                    subprocess.run([sys.executable, gen, "gen", "--seed", seed, "--markets", str(count), "--comps", n,
                                    "--truth", truth_path] + knobs, stdout=stream, check=True)
                with open(os.path.join(tmp, "stream")) as stream:
                    f = subprocess.Popen([os.path.join(bin_dir, "filter-junk")], stdin=stream, stdout=subprocess.PIPE)
                    out = subprocess.run([os.path.join(bin_dir, "normalize-usd")], stdin=f.stdout, stdout=subprocess.PIPE,
                                         check=True).stdout.decode()
                    f.stdout.close()
                    f.wait()
                truth = {}
                with open(truth_path) as t:
                    for line in t:
                        x = json.loads(line)
                        truth[x["job_id"]] = x
            jobs, points = {}, {}
            for line in out.splitlines():
                p = json.loads(line)
                if p["kind"] == "job":
                    jobs[p["job_id"]] = p["attribution"]
                elif p["kind"] == "price_point":
                    points.setdefault(p["job_id"], []).append(p)
            for job, a in jobs.items():
                # the generator writes a numeric grade, "MS65", "XF45"
                g = int(a["grade"].lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
                lo, hi, text = g, g, a["grade"]
                yield int(n), points.get(job, []), (lo, hi, text, R.curve_of(a.get("series"), a.get("title"))), truth[job]


def variant(points, target, truth, clean_only, true_grades, own_curve):
    lo, hi, text, curve = target
    out = []
    for p in points:
        g = truth["grades"].get(p["external_id"])
        if clean_only and g is None and not p.get("filtered_out"):
            continue
        if true_grades and g is not None and not p.get("filtered_out"):
            p = dict(p, grade="G%d" % g, grade_lo=g, grade_hi=g, certifier="PCGS")
        out.append(p)
    return out, (lo, hi, text, truth["curve"] if own_curve else curve)


def main(argv):
    bin_dir, seeds, sizes, count, knobs = os.path.join(here, "..", "..", "bin"), "1 2 3", "8 20 50", 200, []
    i = 0
    while i < len(argv):
        if argv[i] in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        if argv[i] in ("--bin", "--seeds", "--sizes", "--markets") and i + 1 < len(argv):
            if argv[i] == "--bin":
                bin_dir = argv[i + 1]
            elif argv[i] == "--seeds":
                seeds = argv[i + 1]
            elif argv[i] == "--sizes":
                sizes = argv[i + 1]
            else:
                count = int(argv[i + 1])
            i += 2
        else:
            knobs.append(argv[i])
            i += 1
    data = list(markets(bin_dir, seeds.split(), sizes.split(), count, knobs))
    rows = [("as measured", False, False, False), ("only clean listings", True, False, False),
            ("true grades", False, True, False), ("own curve", False, False, True),
            ("true grades + own curve", False, True, True), ("all three", True, True, True)]
    print("median / p90 error / share within 10 %% of the grade method, seeds [%s], %d markets per seed and size %s"
          % (seeds, count, " ".join(knobs)))
    print("%-26s" % "" + "".join("%24s" % ("%s comps" % n) for n in sizes.split()))
    for name, clean, grades, curve in rows:
        line = "%-26s" % name
        for n in sizes.split():
            errs = []
            for comps, points, target, truth in data:
                if comps != int(n):
                    continue
                pts, tgt = variant(points, target, truth, clean, grades, curve)
                v = R.value_grade(pts, tgt)
                errs.append(abs(v["median_cents"] - truth["truth_cents"]) / truth["truth_cents"]
                            if v["median_cents"] else float("inf"))
            line += "%24s" % ("%.1f%% / %.1f%% / %.0f%%" % (100 * quantile(errs, 0.5), 100 * quantile(errs, 0.9),
                                                          100 * sum(e <= 0.1 for e in errs) / len(errs)))
        print(line)
    oracle = {}
    for comps, points, target, truth in data:
        oracle.setdefault(comps, []).append(abs(truth["oracle_cents"] - truth["truth_cents"]) / truth["truth_cents"])
    print("%-26s" % "oracle" + "".join("%24s" % ("%.1f%% / %.1f%% / %.0f%%" % (
        100 * quantile(oracle[int(n)], 0.5), 100 * quantile(oracle[int(n)], 0.9),
        100 * sum(e <= 0.1 for e in oracle[int(n)]) / len(oracle[int(n)]))) for n in sizes.split()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
