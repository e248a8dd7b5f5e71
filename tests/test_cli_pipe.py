"""`genval metrics | head`: a reader that goes away is not an error; genval stops quietly."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def test_a_closed_pipe_stops_quietly_with_sigpipes_status():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # The reader is gone before genval writes a byte (it closes its end at once; genval takes a second to start).
    child = subprocess.Popen([sys.executable, "-c", "import sys; from genval.cli import main; sys.exit(main())",
                              "metrics"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    child.stdout.close()
    err = child.stderr.read().decode()
    assert child.wait(timeout=120) == 141  # 128 + SIGPIPE, as a shell reports `cat big | head`
    assert err == ""  # no traceback, no "Exception ignored", no "error: Broken pipe"
