"""Signals over a text that a unit may track, one value per character (torch-free).

A signal's value at character i is what a reader knows right after reading it, aligned with the
state the model has after reading that character:

- `line-position`: characters since the last newline (0 right after a newline).
- `quote`: 1 inside a quoted span ('...', "...", or triple-quoted), the opening quote included,
  the closing one not; a backslash escapes the next character, a newline ends a one-line span,
  and an apostrophe inside a word ("don't") opens nothing.
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


def quote(text: str) -> list[float]:
    out: list[float] = []
    delim, escaped, i, n = "", False, 0, len(text)
    while i < n:
        ch = text[i]
        if not delim:
            if ch in "'\"" and _opens_quote(text, i):
                delim = ch * 3 if text.startswith(ch * 3, i) else ch
                out.extend([1.0] * len(delim))
                i += len(delim)
                continue
            out.append(0.0)
        elif escaped:
            escaped = False
            out.append(1.0)
        elif ch == "\\":
            escaped = True
            out.append(1.0)
        elif text.startswith(delim, i):
            out.extend([0.0] * len(delim))
            i += len(delim)
            delim = ""
            continue
        elif ch == "\n" and len(delim) == 1:
            delim = ""  # an unterminated one-line string ends with its line
            out.append(0.0)
        else:
            out.append(1.0)
        i += 1
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
