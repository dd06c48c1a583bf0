"""Progress of long work on stderr (encoding a corpus, scoring a long held-out text).

Work that ends within a second shows nothing. Longer work shows a bar on a terminal, or else a
line every few seconds, with the share done, the rate and the time left; and, once shown, one
closing line with the total time. The domain code only calls `reporter(done, total)`.
"""

from __future__ import annotations

import time
from typing import Any

from charrnn_cli import console

DELAY_S = 1.0  # nothing is shown for work that ends sooner
EVERY_S = 5.0  # between the plain lines when stderr is not a terminal


class Reporter:
    """A `progress(done, total)` callback that draws on stderr; use it as a context manager."""

    def __init__(
        self, label: str, unit: str = "MB", scale: float = 1e6, quiet: bool = False
    ) -> None:
        self.label, self.unit, self.scale, self.quiet = label, unit, scale, quiet
        self.start = time.monotonic()
        self.next_line = self.start + DELAY_S
        self.shown = False
        self.done, self.total = 0, None
        self.bar: Any = None
        self.task: Any = None

    def rate(self) -> float:
        return self.done / self.scale / max(time.monotonic() - self.start, 1e-9)

    def text(self) -> str:
        """ "41% of 1,000 MB, 312 MB/s, 2 s left" (the total and the rest when known)."""
        rate = f"{self.rate():,.1f} {self.unit}/s"
        if not self.total:
            return f"{self.done / self.scale:,.0f} {self.unit}, {rate}"
        left = (self.total - self.done) / self.scale / max(self.rate(), 1e-9)
        share = f"{self.done / self.total:.0%} of {self.total / self.scale:,.0f} {self.unit}"
        return f"{share}, {rate}, {left:,.0f} s left"

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if done == 0 or done < self.done:  # a (new) piece of work begins: its own clock
            self.start, self.next_line = now, max(self.next_line, now + DELAY_S)
        self.done, self.total = done, total
        if self.quiet or now < self.next_line:
            return
        self.shown = True
        if console.is_interactive():
            self._draw()
            self.next_line = now + 0.1
        else:
            console.log(f"{self.label}: {self.text()}")
            self.next_line = now + EVERY_S

    def _draw(self) -> None:
        if self.bar is None:
            from rich.progress import BarColumn, Progress, TextColumn

            columns = (TextColumn(self.label), BarColumn(), TextColumn("{task.fields[text]}"))
            self.bar = Progress(*columns, console=console.err(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=self.total, text="")
        self.bar.update(self.task, completed=self.done, total=self.total, text=self.text())

    def close(self, finished: bool = True) -> None:
        if self.bar is not None:
            self.bar.stop()
        if self.shown and finished:
            seconds = time.monotonic() - self.start
            console.log(
                f"{self.label}: done in {seconds:,.1f} s ({self.rate():,.1f} {self.unit}/s)"
            )

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, kind: type | None, *exc: object) -> None:
        self.close(finished=kind is None)
