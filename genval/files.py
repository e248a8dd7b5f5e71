"""Reading a user's files: bytes to text to JSON, every failure one GenvalError naming file, line and fix.

Each reader of a user's file (config, eval set, replay file, human labels, judge and gate
files, a baseline's summary.json) goes through these, so a file that is not UTF-8, JSON
nested past any sane depth, or a string holding half of a surrogate pair stops with one
line instead of a traceback from deep inside pandas or pyarrow.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from genval.errors import GenvalError, where

MAX_DEPTH = 100  # nesting deeper than this is no eval record; far below Python's recursion limit
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LINE_ENDS = re.compile(r"[^\r\n]*(?:\r\n|\r|\n|$)")


def read_bytes(path: str | Path, what: str) -> bytes:
    """Gives the bytes of the file at `path`; a missing or unreadable file is a one-line error."""
    return _opening(Path(path), what, Path.read_bytes)


def _opening(path: Path, what: str, how):
    """Gives `how(path)`; a missing or unreadable file is a one-line error naming it."""
    try:
        return how(path)
    except FileNotFoundError:
        raise GenvalError(f"{path}: no such {what} file") from None
    except IsADirectoryError:
        raise GenvalError(f"{path}: a folder, not a {what} file") from None
    except OSError as exc:
        raise GenvalError(f"{path}: cannot read the {what} ({exc.strerror})") from None


def decode(data: bytes, path: str | Path) -> str:
    """Gives `data` as text (UTF-8, an optional BOM dropped); a bad byte is named with its offset and line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise GenvalError(f"{where(path, line)}: not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                          "save the file as UTF-8") from None


def read_text(path: str | Path, what: str) -> str:
    """Gives the UTF-8 text of the file at `path`."""
    return decode(read_bytes(path, what), path)


def _depth(value) -> int:
    """Gives how deeply `value` nests lists and objects, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            stack.extend((child, level + 1) for child in item if isinstance(child, (dict, list)))
    return deepest


def check_text(value, place: str) -> None:
    """Raises when a string in `value` holds a lone surrogate (text that cannot be written as UTF-8)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise GenvalError(f"{place}: a string holds a lone surrogate (\\u{ord(item[exc.start]):04x}), "
                                  "half of a character; fix the text or its escape") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def parse_json(text: str, path: str | Path, line: int | None = None):
    """Gives the JSON value of `text`, line `line` of `path` (or the whole file when None).

    Malformed JSON, nesting deeper than MAX_DEPTH and a lone surrogate are one-line errors
    naming the file and line.
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        at = line if line is not None else exc.lineno
        raise GenvalError(f"{where(path, at)}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    except ValueError as exc:  # e.g. an integer past Python's 4300-digit conversion limit
        raise GenvalError(f"{where(path, line)}: not valid JSON ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise GenvalError(f"{where(path, line)}: JSON nested more than {MAX_DEPTH} levels deep") from None
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise GenvalError(f"{where(path, line)}: JSON nested more than {MAX_DEPTH} levels deep")
    if _SURROGATE_ESCAPE.search(text):
        check_text(value, where(path, line))
    return value


def read_json(path: str | Path, what: str):
    """Gives the JSON value of a whole file; an error names the file and the line."""
    return parse_json(read_text(path, what), path)


def iter_lines(path: str | Path, what: str, raw: bool = False):
    """Yields (line number, text, byte offset of its line, part) for each line of a UTF-8 file, streaming.

    Lines end at \\n, \\r\\n or \\r, as Python's universal newlines read them; `part` counts the
    lines a lone \\r split off one \\n-ended line (0 almost always), so (offset, part) finds a line
    again. An optional BOM is dropped; a bad byte is named with its offset and line, as `decode` does.
    `raw`: each line keeps its ending, untranslated (as a file opened with newline="" gives it).
    """
    path = Path(path)
    handle = _opening(path, what, lambda p: open(p, "rb"))
    number, offset = 0, 0
    with handle:
        for chunk in handle:
            start = offset
            offset += len(chunk)
            number += 1
            if start == 0 and chunk.startswith(b"\xef\xbb\xbf"):
                chunk, start = chunk[3:], 3
            try:
                text = chunk.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise GenvalError(f"{where(path, number)}: not UTF-8 (byte 0x{chunk[exc.start]:02x} at offset "
                                  f"{start + exc.start}); save the file as UTF-8") from None
            if "\r" not in text:
                yield number, text, start, 0
                continue
            if raw:  # split after each lone \r, keeping every ending as it is
                parts = [p for p in _LINE_ENDS.findall(text) if p]
            else:
                parts = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
            if parts and parts[-1] == "":
                parts.pop()
            for k, part in enumerate(parts):
                yield number, part, start, k
                if k < len(parts) - 1:
                    number += 1


def line_at(path: str | Path, offset: int, part: int = 0, handle=None) -> str:
    """Gives the line `iter_lines` yielded at (offset, part) of the file at `path`."""
    own = handle is None
    handle = open(path, "rb") if own else handle
    try:
        handle.seek(offset)
        raw = handle.readline()
    finally:
        if own:
            handle.close()
    if offset == 0 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    text = raw.decode("utf-8")
    if part == 0 and "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")[part]
