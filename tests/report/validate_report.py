#!/usr/bin/env python3
"""Validates hetrun reports against docs/report.schema.json (draft 2020-12).
usage: validate_report.py SCHEMA REPORT.json... ; exit 0 when all are valid, 1 otherwise."""
import json
import sys

import jsonschema


def main():
    schema = json.load(open(sys.argv[1]))
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    bad = 0
    for path in sys.argv[2:]:
        try:
            doc = json.load(open(path))
        except (OSError, ValueError) as e:
            print("FAIL %s: %s" % (path, e))
            bad += 1
            continue
        errs = sorted(v.iter_errors(doc), key=lambda e: list(e.absolute_path))
        for e in errs[:10]:
            print("FAIL %s: at %s: %s" % (path, "/".join(map(str, e.absolute_path)), e.message[:300]))
        if errs:
            bad += 1
        else:
            print("ok   %s (status %s)" % (path, doc.get("status")))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
