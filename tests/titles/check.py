#!/usr/bin/env python3
"""Run filter-junk over the title table (titles.tsv) and compare what it reads from every
title, and the reason it gives, with the table. One line per failing case, with the
table's line number; exit status 1 when any case failed.

usage: check.py FILTER_JUNK [TABLE]"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def load_attributions():
    named = {}
    with open(os.path.join(HERE, "attributions.ndjson"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                record = json.loads(line)
                named[record["name"]] = record["attribution"]
    return named


def load_cases(path):
    cases = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) != 8:
                sys.exit(f"{path}:{lineno}: {len(cols)} columns, expected 8")
            cases.append((lineno, cols))
    return cases


def expected(cols):
    _, _, grade, interval, certifier, designations, quantity, reason = cols
    lo = hi = None
    if interval != "-":
        parts = interval.split("-")
        lo, hi = int(parts[0]), int(parts[-1])
    return {
        "grade": None if grade == "-" else grade,
        "grade_lo": lo,
        "grade_hi": hi,
        "certifier": None if certifier == "-" else certifier,
        "designations": [] if designations == "-" else designations.split(","),
        "quantity": None if quantity == "-" else int(quantity),
        "filter_reason": None if reason == "-" else reason,
    }


def main():
    program = sys.argv[1]
    table = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "titles.tsv")
    named = load_attributions()
    cases = load_cases(table)
    lines = []
    for n, (lineno, cols) in enumerate(cases):
        name, title = cols[0], cols[1]
        if name != "-":
            if name not in named:
                sys.exit(f"{table}:{lineno}: no attribution named {name}")
            lines.append(json.dumps({"kind": "job", "job_id": f"j{n}", "intake_id": f"i{n}",
                                     "attribution": named[name], "rules": []}))
        else:
            # A marker that is not a job: the points after it are ad-hoc ones.
            lines.append(json.dumps({"kind": "job", "job_id": f"j{n}", "rules": []}))
        lines.append(json.dumps({"kind": "price_point", "adapter": "ebay_finding",
                                 "external_id": str(lineno), "title": title, "price_type": "sold",
                                 "amount": "10.00", "currency": "USD"}))
    run = subprocess.run([program], input="\n".join(lines) + "\n", capture_output=True,
                         text=True, check=False)
    if run.returncode != 0 or run.stderr:
        sys.exit(f"filter-junk exited {run.returncode}: {run.stderr[:2000]}")
    points = [json.loads(l) for l in run.stdout.splitlines() if '"price_point"' in l]
    points = [p for p in points if p.get("kind") == "price_point"]
    if len(points) != len(cases):
        sys.exit(f"{len(points)} price points out for {len(cases)} cases")
    failed = 0
    for (lineno, cols), point in zip(cases, points):
        want = expected(cols)
        got = {k: point.get(k) for k in want}
        if got != want:
            failed += 1
            diff = ", ".join(f"{k}: want {want[k]!r} got {got[k]!r}" for k in want if want[k] != got[k])
            print(f"titles.tsv:{lineno}: [{cols[0]}] {cols[1]}: {diff}")
    print(f"{len(cases) - failed} of {len(cases)} titles read as expected")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
