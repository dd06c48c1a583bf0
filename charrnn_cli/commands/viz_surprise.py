"""`charrnn viz surprise`: each character coloured by the model's surprisal at it, in the
terminal, as JSON lines (i, char, bits, top) or as a page; the mean is eval's bits per char."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from charrnn_cli import console
from charrnn_cli.commands.options import CheckpointOption, DeviceOption, RunOption
from charrnn_cli.commands.viz_common import (
    CorpusOption,
    ForceOption,
    HtmlOption,
    MaxCharsOption,
    TextOption,
    output_target,
    prepare,
    write_page,
)


def surprise(
    run: RunOption = None,
    checkpoint: CheckpointOption = "best",
    text: TextOption = None,
    corpus: CorpusOption = None,
    max_chars: MaxCharsOption = None,
    top: Annotated[int, typer.Option(help="Top guesses per character.", min=1, max=50)] = 5,
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON object a line: i, char, bits, top.")
    ] = False,
    html: HtmlOption = None,
    force: ForceOption = False,
    device: DeviceOption = "auto",
) -> None:
    """Colour each character by the model's surprisal at it (bits), as eval scores it."""
    from charrnn_cli.viz import analysis, pages, terminal

    target = output_target(html, force, "--html")
    model, vocab, lay, source = prepare(run, checkpoint, device, text, corpus, max_chars)
    s = analysis.surprise(model, lay, top)
    bits = [None if b != b else b for b in s.bits.tolist()]  # NaN: not scored
    if html is not None:
        top_chars = [[vocab[i] for i in row] for row in s.top_ids.tolist()]
        page = pages.surprise_page(
            title="charrnn viz surprise", note=source, text=lay.text, bits=bits,
            top_chars=top_chars, top_p=s.top_p.tolist(), mean=s.mean,
        )  # fmt: skip
        write_page(target, page)
    if json_out:
        _json_lines(lay.text, bits, s, vocab)
    elif html is None:
        with console.pipe_guard():
            console.out(
                terminal.surprise_text(lay.text, bits, s.mean, terminal.use_colour(sys.stdout))
            )
    console.log(f"{source}: mean {s.mean:.4f} bits/char over {s.scored:,} characters")


def _json_lines(text: str, bits: list[float | None], s, vocab: str) -> None:
    with console.pipe_guard():
        batch = []
        for i, b in enumerate(bits):
            if b is None:
                continue
            pairs = zip(s.top_ids[i].tolist(), s.top_p[i].tolist(), strict=True)
            top = [{"char": vocab[j], "p": round(p, 6)} for j, p in pairs]
            row = {"i": i, "char": text[i], "bits": b, "top": top}
            batch.append(console.json_text(row))
            if len(batch) >= 1000:
                console.out("\n".join(batch))
                batch.clear()
        if batch:
            console.out("\n".join(batch))
