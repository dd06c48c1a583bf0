"""Signals over a text that a unit may track, one value per character (torch-free).

A signal's value at character i is aligned with the state the model has after reading that
character:

- `line-position`: characters since the last newline (0 right after a newline).
- `quote`: 1 on a quoted span that opens and closes on one line ('...' or "...", a backslash
  escaping the next character), its quote marks included. An apostrophe inside a word ("don't")
  opens nothing, and a triple-quoted block (a docstring) is prose, not a quote: it counts 0,
  and the quotes inside it open nothing.
- `brackets`: nesting depth of (), [] and {} (never below 0).
- `indent`: leading spaces and tabs of the current line read so far.
- any other name is a regular expression: 1 on the characters of each match, 0 elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from charrnn_cli.errors import UsageError

STRING_PREFIXES = {"r", "u", "f", "b", "br", "rb", "fr", "rf"}  # Python's, any case


def line_position(text: str) -> list[float]:
    out, pos = [], 0
    for ch in text:
        pos = 0 if ch == "\n" else pos + 1
        out.append(float(pos))
    return out


def _opens_quote(text: str, i: int) -> bool:
    """A quote character outside a span opens one unless it is an apostrophe inside a word
    (a letter on each side), save after a string prefix such as f or rb."""
    if text[i] == '"':
        return True
    before = text[i - 1] if i > 0 else " "
    after = text[i + 1] if i + 1 < len(text) else " "
    if not (before.isalpha() and after.isalpha()):
        return True
    start = i
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    return text[start:i].lower() in STRING_PREFIXES


def _closing(text: str, i: int, delim: str) -> int:
    """Where the span opened at `i` ends: the index of its closing `delim` on the same line
    (a backslash escapes the next character), or -1 when the line ends first."""
    j = i + 1
    while j < len(text) and text[j] != "\n":
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == delim:
            return j
        j += 1
    return -1


def quote(text: str) -> list[float]:
    out = [0.0] * len(text)
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch not in "'\"" or not _opens_quote(text, i):
            i += 1
        elif text.startswith(ch * 3, i):  # a triple-quoted block: prose, not a quote
            end = text.find(ch * 3, i + 3)
            i = n if end < 0 else end + 3
        else:
            end = _closing(text, i, ch)
            if end < 0:
                i += 1  # a stray quote: nothing to mark
            else:
                out[i : end + 1] = [1.0] * (end + 1 - i)
                i = end + 1
    return out


def brackets(text: str) -> list[float]:
    out, depth = [], 0
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        out.append(float(depth))
    return out


def indent(text: str) -> list[float]:
    out, width, leading = [], 0, True
    for ch in text:
        if ch == "\n":
            width, leading = 0, True
        elif leading and ch in " \t":
            width += 1
        else:
            leading = False
        out.append(float(width))
    return out


BUILT_IN: dict[str, Callable[[str], list[float]]] = {
    "line-position": line_position,
    "quote": quote,
    "brackets": brackets,
    "indent": indent,
}


def regex(text: str, pattern: str) -> list[float]:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise UsageError(
            f"--signal {pattern!r} is neither a built-in signal ({', '.join(BUILT_IN)}) "
            f"nor a valid regular expression: {exc}"
        ) from None
    out = [0.0] * len(text)
    for match in compiled.finditer(text):
        out[match.start() : match.end()] = [1.0] * (match.end() - match.start())
    return out


def check(name: str) -> None:
    """Raise UsageError now if `name` is neither built in nor a valid regular expression."""
    if name not in BUILT_IN:
        regex("", name)


def compute(name: str, text: str) -> list[float]:
    """The signal `name` (built-in or a regular expression) over `text`, one value a character."""
    fn = BUILT_IN.get(name)
    return fn(text) if fn is not None else regex(text, name)
