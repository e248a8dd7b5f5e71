"""The device the model tests run on: the CPU, or what GENVAL_TEST_DEVICE names (benchmarks/gpu_check.sh sets cuda).

Tests that compare against a library run on the CPU allow, on a GPU, the differences of other
kernels in float32: LABEL_TOL for label probabilities.
"""

import os

DEVICE = os.environ.get("GENVAL_TEST_DEVICE", "cpu")
LABEL_TOL = 1e-6 if DEVICE == "cpu" else 1e-5
