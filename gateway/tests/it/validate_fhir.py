"""Validates a FHIR R4 export with a third-party validator: PyPI `fhir.resources` (pydantic
models generated from the FHIR R4B StructureDefinitions; R4B is R4 with the same Bundle,
Patient, Device, Observation and Consent shapes).

usage: python3 validate_fhir.py BUNDLE.json

Parses the whole Bundle (every entry's resource is validated as the class its resourceType
names), then validates every entry resource again on its own. Unknown fields, missing
required fields, wrong cardinalities and malformed primitives (ids, dateTimes, codes) are
errors. Prints one JSON line with counts and timings on success; exits 1 with the validation
errors on failure, 2 if fhir.resources is not installed.
"""

import json
import sys
import time

try:
    from fhir.resources.R4B import get_fhir_model_class
    from fhir.resources.R4B.bundle import Bundle
except ImportError as e:  # the test must fail, not skip: `cargo xtask setup` installs it
    print(f"fhir.resources is not installed ({e}); run `cargo xtask setup`", file=sys.stderr)
    sys.exit(2)


def main() -> int:
    with open(sys.argv[1], "rb") as f:
        raw = f.read()
    started = time.perf_counter()
    try:
        bundle = Bundle.model_validate_json(raw)
    except Exception as e:  # pydantic.ValidationError, with every error listed
        print(f"Bundle: {e}", file=sys.stderr)
        return 1
    bundle_seconds = time.perf_counter() - started
    if bundle.type != "collection":
        print(f"Bundle.type is {bundle.type!r}, expected collection", file=sys.stderr)
        return 1

    started = time.perf_counter()
    by_type = {}
    errors = 0
    for index, entry in enumerate(json.loads(raw).get("entry", [])):
        resource = entry.get("resource")
        if resource is None:
            print(f"entry {index}: no resource", file=sys.stderr)
            errors += 1
            continue
        kind = resource.get("resourceType")
        try:
            get_fhir_model_class(kind).model_validate(resource)
        except Exception as e:
            print(f"entry {index} ({kind}): {e}", file=sys.stderr)
            errors += 1
            continue
        by_type[kind] = by_type.get(kind, 0) + 1
    each_seconds = time.perf_counter() - started
    if errors:
        return 1
    print(json.dumps({
        "validator": "fhir.resources R4B",
        "resources": by_type,
        "bundle_seconds": round(bundle_seconds, 3),
        "each_seconds": round(each_seconds, 3),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
