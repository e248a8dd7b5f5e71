"""Progress: one bar per stage, with counts, on stderr; silent when asked to be."""

from __future__ import annotations

import sys

from tqdm import tqdm

from genval.redact import redact


class Progress:
    """Makes the bars and one-line messages of a run; `quiet` turns both off."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet

    def bar(self, label: str, total: int, unit: str = "ex"):
        """Gives a bar that counts `total` units (examples unless said otherwise)."""
        return tqdm(total=total, desc=label, unit=unit, disable=self.quiet, file=sys.stderr,
                    dynamic_ncols=True, leave=True, mininterval=0.2)

    def say(self, message: str) -> None:
        if not self.quiet:
            print(redact(message), file=sys.stderr, flush=True)
