"""summary.json as one typed model: every number a `Number`, the run's block and each slice's one `Block` type.

aggregate (genval.analysis) builds the `Summary` and writes summary.json from it; everything
else — the reports, the gate, diagnosis, compare, export, the viewer and monitor — reads it
with `read` (or `parse` for a summary already in hand) and uses attributes, never nested
dictionaries. Split by concept: number.py (a number), block.py (the block of a run or slice),
verdict.py (status, diagnoses, failures, gate, decision), calibration.py (a judge against people),
findings.py (the whole summary), reading.py (reading, refusing, the JSON Schema).
"""

from genval.summary.block import (Answered, Block, Classification, Fidelity, FormatCheck, Judge, JudgeRates,
                                  RoleFigures, Slice)
from genval.summary.calibration import Calibration, JudgeCalibration, Meaning, read_calibration
from genval.summary.findings import SCHEMA_VERSION, Candidate, Findings, Ops, Settings, SliceRanking, Summary
from genval.summary.number import PPI, Estimate, Headline, Model, NamedNumber, Number, RoganGladen
from genval.summary.reading import OlderSummary, parse, read, read_data, schema, schema_text
from genval.summary.verdict import Decision, Diagnosis, Failure, Failures, Gate, RuleResult, Status

__all__ = ["Answered", "Block", "Calibration", "Candidate", "Classification", "Decision", "Diagnosis", "Estimate",
           "Failure", "Failures", "Fidelity", "Findings", "FormatCheck", "Gate", "Headline", "Judge",
           "JudgeCalibration", "JudgeRates", "Meaning", "Model", "NamedNumber", "Number", "OlderSummary", "Ops", "PPI",
           "RoganGladen", "RoleFigures", "RuleResult", "SCHEMA_VERSION", "Settings", "Slice", "SliceRanking", "Status",
           "Summary", "parse", "read", "read_calibration", "read_data", "schema", "schema_text"]
