"""Argument types and the parser every `genval` command shares: a mistake is one line, not argparse's exit."""

from __future__ import annotations

import argparse


class UsageError(Exception):
    """A mistake in the command line, as argparse finds it."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, except that a mistake is one line (usage is one `--help` away) and is raised, not exited."""

    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def count(text: str) -> int:
    """An argparse type: a whole number ≥ 1."""
    return _whole(text, 1)


def count0(text: str) -> int:
    """An argparse type: a whole number ≥ 0."""
    return _whole(text, 0)


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} should be more than 0 seconds")
    return value


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{value} is below {least}; give {least} or more")
    return value
