#!/usr/bin/python3
"""Check NDJSON records against schemas/<kind>.schema.json.

Reads the files named (or stdin); prints one line per record that breaks its kind's
schema and exits 1 if any did. Kinds without a schema are not checked.
"""
import json
import pathlib
import sys

import jsonschema

SCHEMAS = pathlib.Path(__file__).resolve().parent.parent / "schemas"


def main():
    validators = {}
    for path in SCHEMAS.glob("*.schema.json"):
        schema = json.loads(path.read_text())
        cls = jsonschema.validators.validator_for(schema)
        validators[path.name.split(".")[0]] = cls(schema)
    bad = 0
    streams = [open(p, encoding="utf-8") for p in sys.argv[1:]] or [sys.stdin]
    for stream in streams:
        for n, line in enumerate(stream, 1):
            record = json.loads(line)
            v = validators.get(record.get("kind"))
            if v is None:
                continue
            for error in v.iter_errors(record):
                bad += 1
                where = "/".join(str(p) for p in error.absolute_path)
                print(f"line {n}: {record.get('kind')}: {where}: {error.message}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
