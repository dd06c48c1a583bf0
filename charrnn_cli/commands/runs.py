"""`charrnn runs`: list the checkpoint store, show a run with its loss curves, remove one.

Everything here reads only `config.json` and `metrics.jsonl` (no torch), so listing and shell
completion are instant. A table on a terminal, `--json` for scripts.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from charrnn_cli import console
from charrnn_cli.errors import CharrnnError, UsageError
from charrnn_cli.storage import runrow, store
from charrnn_cli.training import lineage

app = typer.Typer(
    help="List, show and remove runs in the checkpoint store.",
    invoke_without_command=True,
    no_args_is_help=False,
)

RunName = Annotated[
    str,
    typer.Argument(
        help="A run name, a unique prefix or latest.", autocompletion=store.complete_run_name
    ),
]
COLUMNS = ("run", "corpus", "cell", "size", "params", "steps", "epochs", "best loss", "bits/char")
COLUMNS += ("device", "modified", "parent")


@app.callback()
def runs(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="A JSON list on stdout.")] = False,
) -> None:
    """List the runs: corpus, model, steps and best held-out loss (newest first)."""
    if ctx.invoked_subcommand is not None:
        return
    rows = listing()
    if json_out:
        console.out_json(rows)
        return
    if not rows:
        console.log("no runs yet: train one with `charrnn train`")
        return
    if sys.stdout.isatty():
        _table(rows)
        return
    for r in rows:
        console.out("\t".join(_cells(r, str(r["parameters"]))))


def listing() -> list[dict]:
    """The runs as `--json` lists them, newest first; what cannot be read is warned about."""
    rows = []
    for name in store.all_names():
        problems: list[str] = []
        try:
            # the parent is read leniently: a damaged one is among `problems` (records.py)
            rows.append({**runrow.summary(name, problems), "parent": lineage.parent_of(name)})
        except CharrnnError as exc:  # not even its config.json can be read: not listed
            console.warn(f"{name}: {exc}")
        for problem in problems:  # listed, with what could not be read
            console.warn(f"{name}: {problem}")
    return rows


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _cells(r: dict, parameters: str) -> list[str]:
    """One run's row under COLUMNS, as text (a field a damaged file could not give: `None`)."""
    size = f"{r['layers']}x{r['hidden_size']}"
    loss, bpc = _fmt(r["best_val_loss"]), _fmt(r["best_val_bpc"])
    head = [str(r["name"]), str(r["corpus"]), str(r["cell"]), size, parameters]
    parent = (r.get("parent") or {}).get("run") or "-"
    tail = [str(r["device"]), r["modified"], str(parent)]
    return head + [str(r["steps"]), str(r["epochs"]), loss, bpc, *tail]


def _table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in COLUMNS:
        table.add_column(col, justify="right" if col in ("params", "steps") else "left")
    for r in rows:
        table.add_row(*_cells(r, f"{r['parameters'] or 0:,}"))
    Console().print(table)


@app.command("show")
def show(
    name: RunName,
    plot: Annotated[
        Path | None, typer.Option(help="Also write the loss curves to this PNG (matplotlib).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Config and metrics as JSON.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace the --plot file.")] = False,
    samples: Annotated[
        bool, typer.Option("--samples", help="The samples it drew as it trained, by step.")
    ] = False,
) -> None:
    """A run's config and its training and held-out loss curves, then its latest sample."""
    from charrnn_cli.commands.train_samples import latest_sample, list_samples
    from charrnn_cli.storage import outputs
    from charrnn_cli.storage.curves import ascii_chart, write_png

    if plot is not None and (plot.is_dir() and not force or not plot.name):
        raise UsageError(f"--plot {plot} is a folder: give it a file name such as loss.png")
    target = None if plot is None else outputs.check(plot, force, option="--plot")
    name = store.resolve(name)
    if samples:
        list_samples(name, json_out)
        return
    cfg = store.read_config(name)
    problems: list[str] = []
    metrics = store.read_metrics(name, problems)
    for problem in problems:
        console.warn(problem)
    chain = lineage.chain(name)
    if json_out:
        console.out_json({"config": cfg, "metrics": metrics, "lineage": chain})
        return
    console.out(_describe(name, cfg, runrow.summary(name), chain))
    train = [(r["step"], r["train_loss"]) for r in metrics if r.get("train_loss") is not None]
    val = [(r["step"], r["val_loss"]) for r in metrics if r.get("val_loss") is not None]
    console.out(ascii_chart({"train": train, "held-out": val}, width=64, height=16))
    if (last := latest_sample(name)) is not None:
        console.out(last)
    if plot is not None:
        write_png(target, {"train": train, "held-out": val}, title=name)
        console.log(f"wrote {plot}")


def _describe(name: str, cfg: dict, summary: dict, chain: list[dict]) -> str:
    """The head of `runs show`: what the run is, how far it got and its lineage (config.json is
    checked, but a field an older charrnn did not write may be missing)."""
    m, corpus = cfg["model"], cfg.get("corpus", {})
    return "\n".join(
        [
            f"run         {name}",
            f"path        {store.run_dir(name)}",
            f"corpus      {corpus.get('name')} ({corpus.get('path')})",
            f"model       {m.get('cell')} {m.get('layers')}x{m.get('hidden_size')},"
            f" embed {m.get('embed_size')}, dropout {m.get('dropout')},"
            f" {summary['parameters'] or 0:,} parameters",
            "training    " + ", ".join(f"{k}={v}" for k, v in cfg["train"].items()),
            f"progress    step {summary['steps']}, epoch {summary['epochs']}, "
            f"best held-out {_fmt(summary['best_val_loss'])} nats/{summary['unit']} "
            f"({_fmt(summary['best_val_bpc'])} bits/char)",
            f"device      {cfg.get('device')}; torch {cfg.get('torch')}, "
            f"charrnn {cfg.get('charrnn')}",
            *(["lineage     " + " <- ".join([name, *map(_ancestor, chain)])] if chain else []),
            "",
        ]
    )


def _ancestor(parent: dict) -> str:
    """A parent in the lineage line: `name (best.pt at step 1200 on tinyshakespeare, +12 chars)`."""
    folder = parent.get("checkpoint") == "folder"  # an exported folder (lineage.FOLDER)
    gone = "" if parent.get("exists") or folder else ", since removed"
    corpus = (parent.get("corpus") or {}).get("name")
    what = "exported folder" if folder else f"{parent.get('checkpoint')}.pt"
    return (
        f"{parent.get('run')} ({what} at step {parent.get('step')} on "
        f"{corpus}, +{len(parent.get('added') or '')} characters{gone})"
    )


@app.command("path")
def path(name: RunName) -> None:
    """Print a run's folder."""
    console.out(str(store.run_dir(store.resolve(name))))


@app.command("rm")
def rm(
    name: RunName,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Remove a run and its checkpoints."""
    name = store.resolve(name)
    if not yes:
        if not sys.stdin.isatty():
            raise CharrnnError(f"not removing {name!r} without confirmation: pass --yes")
        typer.confirm(f"Remove run {name!r} and its checkpoints?", abort=True, err=True)
    with store.lock(name):
        folder = store.remove(name)
    console.log(f"removed {folder}")
