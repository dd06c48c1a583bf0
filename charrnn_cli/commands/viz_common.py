"""What the `charrnn viz` commands share: their text options and how the text is found
(given, read from a file or stdin, or the run's held-out tail), loaded and laid out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from charrnn_cli import console
from charrnn_cli import text as read_text
from charrnn_cli.commands.options import escaped
from charrnn_cli.corpora import sources
from charrnn_cli.errors import UsageError

HELD_OUT_CHARS = 3000  # default text: the start of the run's held-out tail
FIND_CHARS = 30000  # ...for ranking units, where more text steadies the correlation
GIVEN_CHARS = 100_000  # at most this much of a --text or --corpus unless --max-chars says more
BUILT_IN_SIGNALS = ("line-position", "quote", "brackets", "indent")

TextOption = Annotated[str | None, typer.Option("--text", help="Show this text.")]
CorpusOption = Annotated[
    str | None,
    typer.Option(help="Read the text from a corpus NAME, a PATH, or - for stdin."),
]
MaxCharsOption = Annotated[
    int | None,
    typer.Option(
        help=escaped(
            "Use at most N characters [the first 3,000 of the held-out text (30,000 for find), "
            "100,000 of --text/--corpus]."
        ),
        min=2,
        max=1_000_000,
    ),
]
StateOption = Annotated[
    Literal["c", "h"] | None,
    typer.Option(
        help=escaped("Activation shown: tanh(c) or h [c for an LSTM; GRU and RNN have h].")
    ),
]
HtmlOption = Annotated[
    Path | None, typer.Option("--html", help="Write a self-contained page to FILE.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON on stdout.")]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Replace the page or picture if it exists.")
]


def prepare(
    run: str | None,
    checkpoint: str,
    device: str,
    text: str | None,
    corpus: str | None,
    max_chars: int | None,
    held_out_chars: int = HELD_OUT_CHARS,
) -> tuple[Any, str, Any, str]:
    """Load the run and lay out the text: (model, vocab, analysis.Layout, a line saying what
    was read)."""
    from charrnn_cli.storage.checkpoint import load_run
    from charrnn_cli.viz import analysis

    if text is not None and corpus is not None:
        raise UsageError("give --text or --corpus, not both")
    model, vocab, data, name = load_run(run, checkpoint, device)
    if model.cfg.vocab == "bytes":  # a cell's trace is drawn over characters, one per step
        raise UsageError(f"viz needs a run of characters; run {name!r} reads bytes")
    if text is None and corpus is None:
        text = analysis.held_out_text(name, data, vocab, max_chars or held_out_chars)
        source = f"the first {len(text):,} characters of the held-out text"
    else:
        limit = max_chars or GIVEN_CHARS
        if text is not None:
            text = read_text.argument(text, "--text")
            cut, text = len(text) > limit, text[:limit]
            source = "the given text"
        else:
            text, cut = sources.read_start(corpus, limit)
            source = "stdin" if corpus == "-" else corpus
        if cut:
            console.warn(f"only the first {limit:,} characters are shown (--max-chars)")
    unknown = sum(c not in vocab for c in set(text))
    if unknown:
        console.warn(f"{unknown} distinct characters are outside the run's vocabulary: skipped")
    lay = analysis.layout(text, vocab)
    return model, vocab, lay, f"run {name} ({checkpoint}), {source}"


def activation_kind(model: Any, state: str | None) -> str:
    """The activation to show: the option given, checked, or the cell's natural one."""
    if state is None:
        return "c" if model.cfg.cell == "lstm" else "h"
    if state == "c" and model.cfg.cell != "lstm":
        raise UsageError(f"a {model.cfg.cell.upper()} has no cell state c: use --state h")
    return state


def output_target(path: Path | None, force: bool, option: str) -> Any:
    """The page's path checked before any work (outputs.check): None when not asked for."""
    from charrnn_cli.storage import outputs

    return None if path is None else outputs.check(path, force, option=option)


def write_page(target: Any, page: str) -> None:
    """Write a page (or picture) to its checked path (outputs.write_bytes) and print it."""
    from charrnn_cli.storage import outputs

    outputs.write_bytes(target, page.encode("utf-8"))
    console.out(str(target.path))
