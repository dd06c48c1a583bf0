"""`charrnn sample`: stream generated text to stdout, starting with the seed, or `--lines N`.

Characters are written as they are made, flushed in small chunks, and nothing else goes to
stdout; a reader that goes away (`| head`) ends the command quietly with exit 0. `--num K`
(K > 1) and `--lines` sample many streams at once (`--parallel`); `--lines` ends with one line
on stderr counting what it dropped and why.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from charrnn_cli import console
from charrnn_cli import text as read_text
from charrnn_cli.commands.options import INT_MAX, CheckpointOption, DeviceOption, RunOption
from charrnn_cli.corpora import sources
from charrnn_cli.errors import UsageError
from charrnn_cli.sampling.request import SampleRequest

if TYPE_CHECKING:
    from charrnn_cli.sampling.generator import Piece

FLUSH_CHARS = 64  # write at least this often
FLUSH_SECONDS = 0.05  # ...or after this long, so slow devices still stream


def sample(
    run: RunOption = None,
    checkpoint: CheckpointOption = "best",
    length: Annotated[
        int,
        typer.Option(
            "--len",
            "--length",
            help="Characters to generate (0 with --stream: unbounded).",
            min=0,
            max=INT_MAX,
        ),
    ] = 1000,
    seed: Annotated[
        str | None,
        typer.Option("--seed", "--prime", help="Priming text fed first (- reads stdin)."),
    ] = None,
    echo_seed: Annotated[
        bool,
        typer.Option(
            " /--no-echo-seed", help="Leave the seed out of the output.", show_default=False
        ),
    ] = True,
    temperature: Annotated[
        float, typer.Option(help="Sharper below 1, wilder above; 0 is greedy.", min=0.0, max=100.0)
    ] = 1.0,
    top_k: Annotated[
        int | None, typer.Option(help="Draw only from the k likeliest.", min=1, max=INT_MAX)
    ] = None,
    top_p: Annotated[
        float | None,
        typer.Option(
            help="Draw from the smallest set with this probability, in (0, 1].", min=0.0, max=1.0
        ),
    ] = None,
    greedy: Annotated[
        bool, typer.Option("--greedy", help="Always the likeliest character.")
    ] = False,
    beam_width: Annotated[
        int | None, typer.Option(help="The likeliest continuation by beam search.", min=1, max=1024)
    ] = None,
    random_seed: Annotated[
        int | None, typer.Option(help="Same seed, same text.", min=0, max=INT_MAX)
    ] = None,
    num: Annotated[int, typer.Option(help="How many samples.", min=1, max=INT_MAX)] = 1,
    separator: Annotated[
        str, typer.Option(help="Between samples.", show_default="a blank line: $'\\n\\n'")
    ] = "\n\n",
    stream: Annotated[
        bool, typer.Option("--stream", help="With --len 0: generate until the reader stops.")
    ] = False,
    unknown: Annotated[
        Literal["error", "skip"], typer.Option(help="Seed characters outside the vocabulary.")
    ] = "error",
    lines: Annotated[
        int | None,
        typer.Option(
            help="Print this many whole lines, for a corpus of one item a line.", min=1, max=INT_MAX
        ),
    ] = None,
    novel: Annotated[
        bool, typer.Option("--novel", help="With --lines: drop lines found in the training corpus.")
    ] = False,
    unique: Annotated[bool, typer.Option("--unique", help="With --lines: no line twice.")] = False,
    min_line_len: Annotated[
        int, typer.Option(help="With --lines: drop shorter lines.", min=0, max=INT_MAX)
    ] = 1,
    max_line_len: Annotated[
        int | None,
        typer.Option(
            help="With --lines: drop longer lines [4x the corpus's longest line].",
            min=1,
            max=INT_MAX,
        ),
    ] = None,
    parallel: Annotated[
        int | None,
        typer.Option(
            help="Streams sampled at once by --lines and --num [64 on a CPU, 256 on a GPU].",
            min=1,
            max=65536,
        ),
    ] = None,
    device: DeviceOption = "auto",
) -> None:
    """Generate text from a trained run; characters stream to stdout."""
    if length == 0 and not stream:
        raise UsageError("--len 0 means unbounded output: add --stream to confirm")
    if beam_width is not None and stream:
        raise UsageError("--beam-width needs a finite --len")
    request = SampleRequest(
        prompt=_read_seed(seed), length=length or None, temperature=temperature, top_k=top_k,
        top_p=top_p, greedy=greedy, beam_width=beam_width, num=num, random_seed=random_seed,
        unknown=unknown, echo=echo_seed, lines=lines, novel=novel, unique=unique,
        min_line_len=min_line_len, max_line_len=max_line_len, parallel=parallel, device=device,
    )  # fmt: skip
    from charrnn_cli.sampling.generator import Report, generate, load

    model = load(run, checkpoint, device, batched=request.batched)
    report = Report()
    with console.pipe_guard():
        try:
            _write(generate(model, request, report), separator, whole_lines=lines is not None)
        finally:
            if report.rules is not None and report.rules.note:
                console.warn(report.rules.note)
            if (summary := report.lines_summary()) is not None:
                console.log(summary)
    if report.replaced:
        console.warn(f"{report.replaced} invalid UTF-8 byte sequences were shown as U+FFFD")


def _read_seed(seed: str | None) -> str:
    """The seed's text (stdin's for `-`, of any length), through the one decoder: bytes that
    are not UTF-8, from stdin or in the argument itself, are the one error saying where."""
    if seed != "-":
        return read_text.argument(seed or "", "--seed")
    with sources.open_source("-") as (stdin, _):
        data = stdin.read()
    if not data:
        raise UsageError("--seed - read nothing from stdin")
    return read_text.decode(data, "--seed - (stdin)")


def _write(pieces: Iterable[Piece], separator: str, *, whole_lines: bool) -> None:
    """Write the pieces as they come, `separator` between samples and a newline after each
    line, flushed every FLUSH_CHARS characters or FLUSH_SECONDS (so slow devices still stream);
    a terminal gets a last newline."""
    buf: list[str] = []
    current, next_flush = None, time.monotonic() + FLUSH_SECONDS
    for piece in pieces:
        if whole_lines:
            buf.append(piece.text + "\n")
        else:
            if piece.index != current:
                buf.append(separator if current is not None else "")
                current = piece.index
            buf.append(piece.text)
        if sum(map(len, buf)) >= FLUSH_CHARS or time.monotonic() >= next_flush:
            _flush(buf)
            next_flush = time.monotonic() + FLUSH_SECONDS
    if sys.stdout.isatty() and not whole_lines:
        buf.append("\n")
    _flush(buf)


def _flush(buf: list[str]) -> None:
    if buf:
        sys.stdout.write("".join(buf))
        sys.stdout.flush()
        buf.clear()
