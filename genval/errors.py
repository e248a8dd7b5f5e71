"""The one error type a user's mistake raises; the CLI prints it in one line."""


class GenvalError(Exception):
    """A mistake in the user's input: the message names the file, line or key and the fix."""

    def __init__(self, message: str):
        message = " ".join(str(message).split("\n"))  # one line, always: a quoted value may hold a newline
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def where(path, line: int | None = None) -> str:
    """Gives `path` or `path:line`, the prefix of every message about a file."""
    return f"{path}:{line}" if line is not None else str(path)


def did_you_mean(word: str, choices, cutoff: float = 0.6) -> str:
    """Gives "; did you mean 'x'?" for the choice closest to a mistyped `word` (difflib's ratio), else ""."""
    import difflib

    found = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=cutoff)
    return f"; did you mean '{found[0]}'?" if found else ""
