"""`charrnn train`'s progress on stderr: a rich bar on a terminal (the records' evaluation and
sample lines printed above it), a plain line every few seconds otherwise, nothing but notes with
--quiet. The Python API's notebook display reuses the lines (train_notebook.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from charrnn_cli import console
from charrnn_cli.commands.train_samples import show_sample

if TYPE_CHECKING:
    from rich.console import Console

    from charrnn_cli.training.train import Event


def render(records: Iterable[Event], quiet: bool) -> Event | None:
    """Draw the records on stderr; return the last one."""
    last = None
    if quiet:
        for rec in records:
            last = rec
            if rec.kind == "start" and rec.info.get("note"):
                console.warn(rec.info["note"])
        return last
    if console.is_interactive():
        return _render_live(records)
    next_plain = 0.0
    for rec in records:
        last = rec
        if rec.kind == "start":
            _start_line(rec)
        elif rec.kind == "step" and (time.monotonic() >= next_plain or rec.step == rec.total_steps):
            next_plain = time.monotonic() + 5.0
            console.log(_step_text(rec))
        elif rec.kind == "eval":
            console.log(_eval_text(rec))
        elif rec.kind == "sample":
            show_sample(rec)
        elif rec.kind == "skip":
            console.warn(
                f"step {rec.step}: loss not finite, step skipped ({rec.info['run']} in a row)"
            )
        elif rec.kind == "end":
            console.log(_end_text(rec))
    return last


def _render_live(records: Iterable[Event]) -> Event | None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    last = None
    columns = (
        TextColumn("[bold]train[/]"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[stats]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console.err(), transient=False) as bar:
        task = None
        for rec in records:
            last = rec
            if rec.kind == "start":
                _start_line(rec, bar.console)
                task = bar.add_task("train", total=rec.total_steps, completed=rec.step, stats="")
            elif rec.kind == "step" and task is not None:
                bar.update(task, completed=rec.step, stats=_step_text(rec, short=True))
            elif rec.kind == "eval":
                bar.console.print(_eval_text(rec))
            elif rec.kind == "sample":
                show_sample(rec, bar.console)
            elif rec.kind == "skip":
                bar.console.print(f"[yellow]step {rec.step}: loss not finite, skipped[/]")
            elif rec.kind == "end":
                if task is not None:
                    bar.update(task, completed=rec.step)
                bar.console.print(_end_text(rec))
    return last


def _start_line(rec: Event, where: Console | None = None) -> None:
    if rec.info.get("note"):  # e.g. a stored precision this device lacks: it goes on in fp32
        (where or console.err()).print(f"note: {rec.info['note']}", highlight=False, soft_wrap=True)
    (where or console.err()).print(_start_text(rec), highlight=False, soft_wrap=True)


def _start_text(rec: Event) -> str:
    i = rec.info
    return (
        f"{'resuming' if i['resumed'] else 'training'} on {i['device']}"
        + (f" x {i['world_size']} processes" if i["world_size"] > 1 else "")
        + (f" in {i['precision']}" if i.get("precision", "fp32") != "fp32" else "")
        + f": {i['parameters']:,} parameters, {i['vocab_size']} "
        + ("byte ids, " if i.get("unit") == "byte" else "characters, ")
        + f"{i['train_chars']:,} train / {i['val_chars']:,} held out, "
        f"{i['steps_per_epoch']} steps/epoch"
    )


def _step_text(rec: Event, short: bool = False) -> str:
    cps = f"{rec.chars_per_sec:,.0f} ch/s" if rec.chars_per_sec else "-"
    loss = f"{rec.train_loss:.3f}" if rec.train_loss is not None else "-"
    if short:
        return f"epoch {rec.epoch + 1} loss {loss} {cps}"
    eta = f"{rec.eta_s / 60:.1f} min left" if rec.eta_s is not None else ""
    return (
        f"epoch {rec.epoch + 1} step {rec.step}/{rec.total_steps} loss {loss} "
        f"lr {rec.lr:.2e} {cps} {eta}"
    )


def _eval_text(rec: Event) -> str:
    star = " [green](best)[/]" if rec.best else ""
    unit = rec.info.get("unit", "char")  # a byte run: per byte, and bits/char as eval gives it
    per_byte = f"{rec.info['val_bpb']:.4f} bits/byte, " if "val_bpb" in rec.info else ""
    return (
        f"step {rec.step}: held-out {rec.val_loss:.4f} nats/{unit}, {per_byte}"
        f"{rec.val_bpc:.4f} bits/char{star}"
    )


def _end_text(rec: Event) -> str:
    why = {"done": "finished", "budget": "time budget reached"}.get(rec.reason, rec.reason)
    unit = rec.info.get("unit", "char")
    return (
        f"{why} at step {rec.step} after {rec.elapsed_s / 60:.1f} min; "
        f"best held-out {rec.val_loss:.4f} nats/{unit} ({rec.val_bpc:.3f} bits/{unit})"
    )
