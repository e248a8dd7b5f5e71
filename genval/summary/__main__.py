"""`python -m genval.summary > docs/summary.schema.json`: prints summary.json's JSON Schema, made from the models."""

import sys

from genval.summary import schema_text

sys.stdout.write(schema_text())
