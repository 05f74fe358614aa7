"""Validates YAML policy documents against policies/schema/meshwork-v1.schema.json with the jsonschema
package (Draft 2020-12). Usage: check_schema.py SCHEMA FILE... ; prints "ok FILE#N" or "invalid FILE#N: why"."""
import json, sys
import jsonschema, yaml

schema = json.load(open(sys.argv[1]))
validator = jsonschema.Draft202012Validator(schema)
jsonschema.Draft202012Validator.check_schema(schema)
for path in sys.argv[2:]:
    for n, doc in enumerate(yaml.safe_load_all(open(path))):
        if doc is None:
            continue
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        if errors:
            print(f"invalid {path}#{n}: " + "; ".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors))
        else:
            print(f"ok {path}#{n}")
