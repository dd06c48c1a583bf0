"""`charrnn viz cells|find|gates`: what single units do along a text.

`find` ranks every unit by the correlation of its activation with a signal (features.py);
`cells` colours the text by chosen units (by default the best unit for each built-in signal);
`gates` tells how often each gate is nearly shut or nearly open.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from charrnn_cli import console
from charrnn_cli.commands.options import (
    INT_MAX,
    CheckpointOption,
    DeviceOption,
    RunOption,
    escaped,
)
from charrnn_cli.commands.viz_common import (
    BUILT_IN_SIGNALS,
    FIND_CHARS,
    CorpusOption,
    ForceOption,
    HtmlOption,
    JsonOption,
    MaxCharsOption,
    StateOption,
    TextOption,
    activation_kind,
    output_target,
    prepare,
    write_page,
)
from charrnn_cli.errors import UsageError


def _signal_names(incomplete: str) -> list[str]:
    return [s for s in BUILT_IN_SIGNALS if s.startswith(incomplete)]


def find(
    signal: Annotated[
        str,
        typer.Option(
            help="line-position, quote, brackets, indent, or a REGEX (1 inside a match).",
            autocompletion=_signal_names,
        ),
    ],
    run: RunOption = None,
    checkpoint: CheckpointOption = "best",
    top: Annotated[int, typer.Option(help="How many units to list.", min=1, max=INT_MAX)] = 10,
    json_out: Annotated[
        bool, typer.Option("--json", help="A JSON array of {layer, unit, r, saturated}.")
    ] = False,
    state: StateOption = None,
    text: TextOption = None,
    corpus: CorpusOption = None,
    max_chars: MaxCharsOption = None,
    device: DeviceOption = "auto",
) -> None:
    """Rank every unit by the correlation (Pearson r) of its activation with a signal."""
    from charrnn_cli.viz import analysis, features

    features.check(signal)
    model, _, lay, source = prepare(run, checkpoint, device, text, corpus, max_chars, FIND_CHARS)
    values = features.compute(signal, lay.text)
    ranks = analysis.rank_units(model, lay, {signal: values}, activation_kind(model, state))
    if signal not in ranks:
        raise UsageError(f"the signal {signal!r} is constant over the text: nothing to rank by")
    rows = ranks[signal][:top]
    console.log(f"{source}: {len(ranks[signal]):,} units ranked by |r| with {signal!r}")
    if json_out:
        console.out_json([{"layer": x.layer, "unit": x.unit, "r": round(x.r, 6),
                           "saturated": round(x.saturated, 6)} for x in rows])  # fmt: skip
        return
    lines = [f"{'layer':>5} {'unit':>5} {'r':>7} {'saturated':>9}"]
    lines += [f"{x.layer:>5} {x.unit:>5} {x.r:>+7.3f} {x.saturated:>9.1%}" for x in rows]
    console.out("\n".join(lines))


def _default_units(model, lay, kind: str, layer: int | None) -> list[tuple[int, int, str]]:
    """The best unit for each built-in signal (in `layer` when given), labelled with its r."""
    from charrnn_cli.viz import analysis, features

    wanted = {name: features.compute(name, lay.text) for name in BUILT_IN_SIGNALS}
    picked: dict[tuple[int, int], str] = {}
    for name, ranks in analysis.rank_units(model, lay, wanted, kind).items():
        best = next(x for x in ranks if layer is None or x.layer == layer)
        key, why = (best.layer, best.unit), f"{name} r={best.r:+.2f}"
        picked[key] = f"{picked[key]}, {why}" if key in picked else why
    return [(lay_, unit, why) for (lay_, unit), why in picked.items()]


def cells(
    run: RunOption = None,
    checkpoint: CheckpointOption = "best",
    layer: Annotated[
        int | None,
        typer.Option(
            help=escaped("The layer of --unit (1 = next to the input) [the last]."),
            min=1,
            max=INT_MAX,
        ),
    ] = None,
    unit: Annotated[
        list[int] | None,
        typer.Option(
            help=escaped("A unit to show; repeat for more [the best for each signal]."),
            min=0,
            max=INT_MAX,
        ),
    ] = None,
    state: StateOption = None,
    text: TextOption = None,
    corpus: CorpusOption = None,
    max_chars: MaxCharsOption = None,
    html: HtmlOption = None,
    force: ForceOption = False,
    device: DeviceOption = "auto",
) -> None:
    """Colour the text by single units' activations: -1 blue, 0 white, +1 red."""
    from charrnn_cli.viz import analysis, pages, terminal

    target = output_target(html, force, "--html")
    model, _, lay, source = prepare(run, checkpoint, device, text, corpus, max_chars)
    kind = activation_kind(model, state)
    if layer is not None and layer > model.cfg.layers:
        raise UsageError(f"--layer must be 1 to {model.cfg.layers} for this run, got {layer}")
    chosen = [(layer or model.cfg.layers, u, "given") for u in unit or []]
    if html is not None or not chosen:
        known = {(a, b) for a, b, _ in chosen}
        chosen += [u for u in _default_units(model, lay, kind, layer) if u[:2] not in known]
    if not chosen:  # a text with no signal in it at all
        chosen = [(layer or model.cfg.layers, 0, "first unit")]
    values = analysis.unit_traces(model, lay, [(a, b) for a, b, _ in chosen], kind)
    shown = "tanh(c)" if kind == "c" else "h"
    labels = [f"layer {a} unit {b} · {why}" for a, b, why in chosen]
    rows = [[None if v != v else v for v in row] for row in values.tolist()]  # NaN: no value
    if html is not None:
        views = [pages.UnitView(lab, row) for lab, row in zip(labels, rows, strict=True)]
        title = f"charrnn viz cells: {shown}"
        write_page(target, pages.cells_page(title=title, note=source, text=lay.text, units=views))
        return
    colour = terminal.use_colour(sys.stdout)
    with console.pipe_guard():
        for lab, row in zip(labels, rows, strict=True):
            console.out(terminal.cells_text(lay.text, f"{lab} ({shown})", row, colour) + "\n")


def gates(
    run: RunOption = None,
    checkpoint: CheckpointOption = "best",
    text: TextOption = None,
    corpus: CorpusOption = None,
    max_chars: MaxCharsOption = None,
    plot: Annotated[
        Path | None, typer.Option(help="Draw the per-unit picture to FILE (an SVG).")
    ] = None,
    json_out: JsonOption = False,
    force: ForceOption = False,
    device: DeviceOption = "auto",
) -> None:
    """How often each gate is nearly shut (< 0.1) or nearly open (> 0.9), per layer."""
    from charrnn_cli.viz import analysis, svg

    target = output_target(plot, force, "--plot")
    model, _, lay, source = prepare(run, checkpoint, device, text, corpus, max_chars, FIND_CHARS)
    stats = analysis.gate_saturation(model, lay)
    console.log(f"{source}: gate saturation of {len(stats)} gates")
    if plot is not None:
        points = [svg.GatePoints(g.layer, g.gate, g.low.tolist(), g.high.tolist())
                  for g in stats]  # fmt: skip
        write_page(target, svg.gates_svg(points, f"gate saturation · {source}"))
    if json_out:
        console.out_json([{"layer": g.layer, "gate": g.gate, "below": float(g.low.mean()),
                           "above": float(g.high.mean()), "units_below": g.low.round(4).tolist(),
                           "units_above": g.high.round(4).tolist()} for g in stats])  # fmt: skip
        return
    if plot is not None:
        return
    lines = [f"{'layer':>5}  {'gate':<7} {'< 0.1':>7} {'> 0.9':>7}  units mostly shut / open"]
    for g in stats:
        shut, open_ = int((g.low > 0.5).sum()), int((g.high > 0.5).sum())
        lines.append(f"{g.layer:>5}  {g.gate:<7} {g.low.mean():>7.1%} {g.high.mean():>7.1%}"
                     f"  {shut} / {open_} of {len(g.low)}")  # fmt: skip
    console.out("\n".join(lines))
