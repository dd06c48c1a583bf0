"""Stop strings, matched as a choice's text arrives, in time linear in the text. Torch-free.

A choice ends at the first stop string to COMPLETE in its text (the earliest end; of several
that end at the same character, the longest), cut before that string, whatever pieces the text
came in: the answer never depends on when the text was flushed. Each string is a
Knuth-Morris-Pratt automaton (its failure table is built once per request, shared by the
request's choices), so every character is looked at a bounded number of times however long the
strings are, and a choice holds back (`held`) only the characters at its end that could still
begin a stop string: none while the text matches no string's start, never more than the
longest string less one.
"""

from __future__ import annotations

from array import array


class Stops:
    """A request's stop strings and their failure tables (built on first use)."""

    def __init__(self, strings: tuple[str, ...]) -> None:
        self.strings = strings
        self._tables: list[array] | None = None

    @property
    def tables(self) -> list[array]:
        """fail[k]: the longest proper border of string[: k + 1] (KMP's failure function)."""
        if self._tables is None:
            self._tables = [_failure(s) for s in self.strings]
        return self._tables


def _failure(s: str) -> array:
    fail = array("i", bytes(4 * len(s)))
    k = 0
    for i in range(1, len(s)):
        c = s[i]
        while k and s[k] != c:
            k = fail[k - 1]
        if s[k] == c:
            k += 1
        fail[i] = k
    return fail


class Matcher:
    """One choice's progress through its request's stop strings."""

    def __init__(self, stops: Stops) -> None:
        self.stops = stops
        self.state = [0] * len(stops.strings)  # characters of each string matched at the end

    @property
    def held(self) -> int:
        """Characters at the end of the text so far that may yet begin a stop string."""
        return max(self.state, default=0)

    def feed(self, text: str) -> int | None:
        """Read `text`; where the first stop string to complete in it begins (an index into
        `text`, negative when it began in earlier text), or None when none completes."""
        best: tuple[int, int] | None = None  # (end in text, -length): the earliest, longest
        for i, (s, fail) in enumerate(zip(self.stops.strings, self.stops.tables, strict=True)):
            end, self.state[i] = _scan(s, fail, self.state[i], text)
            if end is not None and (best is None or (end, -len(s)) < best):
                best = (end, -len(s))
        return None if best is None else best[0] + best[1]


def _scan(s: str, fail: array, k: int, text: str) -> tuple[int | None, int]:
    """Run one string's automaton from state k over text: (the index just past its first
    completion, or None; the state after the text)."""
    j, n, first = 0, len(text), s[0]
    while j < n:
        if k == 0:  # nothing matched: jump to the next character that could start the string
            j = text.find(first, j)
            if j < 0:
                return None, 0
        c = text[j]
        while k and s[k] != c:
            k = fail[k - 1]
        if s[k] == c:
            k += 1
        j += 1
        if k == len(s):
            return j, k
    return None, k
