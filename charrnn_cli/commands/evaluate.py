"""`charrnn eval`: score a run on its own held-out text, or on any text.

Reports characters scored, loss in nats per character, bits per character, perplexity and
next-character accuracy; `--json` prints one object on stdout for scripts
(`charrnn eval --json | jq .bits_per_char`). The held-out tail is read from the run's memory-
mapped encoding, whole or its first `--max-chars`, with progress on stderr when it takes more
than a second; text from `--corpus` is read in blocks, so memory stays bounded whatever its
size. A byte run (`--vocab bytes`) is scored per byte and adds `bits_per_byte`; its
`bits_per_char` spreads the same bits over the characters those bytes make, so runs of both
kinds compare.
"""

from __future__ import annotations

from typing import Annotated

import typer

from charrnn_cli import console
from charrnn_cli.commands.options import INT_MAX, CheckpointOption, DeviceOption, RunOption
from charrnn_cli.corpora import sources
from charrnn_cli.errors import CharrnnError
from charrnn_cli.storage import store

LN2 = 0.6931471805599453  # nats per bit


def evaluate(
    run: RunOption = None,
    checkpoint: CheckpointOption = "best",
    corpus: Annotated[
        str | None,
        typer.Option(help="Score this text instead: a corpus NAME, a PATH, or - for stdin."),
    ] = None,
    max_chars: Annotated[
        int | None,
        typer.Option(
            help="Read only the first N characters (of the held-out tail, or of --corpus); a "
            "few fewer are scored (each stream's first is context only).",
            min=2,
            max=INT_MAX,
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Refuse text with characters outside the vocabulary.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    device: DeviceOption = "auto",
) -> None:
    """Score a run: loss (nats/char), bits/char, perplexity and accuracy (a byte run: per byte,
    and bits/char over the characters the bytes make)."""
    from charrnn_cli.storage.checkpoint import configs, load_run

    model, vocab, ck, name = load_run(run, checkpoint, device)
    model_cfg, train_cfg = configs(ck)
    kind = model_cfg.vocab
    if corpus is None:
        total, chars, source = _held_out(model, name, vocab, kind, train_cfg, max_chars)
        skipped = 0
    else:
        total, chars, skipped = _text(model, corpus, vocab, kind, strict, max_chars)
        source = corpus
    from charrnn_cli.evaluate import figures

    result = {"run": name, "checkpoint": checkpoint, "text": source}
    result.update(figures(total, chars, skipped, kind))
    if skipped:
        console.warn(f"{skipped} characters outside the vocabulary were skipped")
    if json_out:
        console.out_json(result)
        return
    unit = "byte" if kind == "bytes" else "char"
    bytes_line = f"bits/byte     {total.bits_per_char:.4f}\n" if kind == "bytes" else ""
    console.out(
        f"run           {name} ({checkpoint})\ntext          {source}\n"
        f"characters    {result['chars']:,}\nloss          {total.loss:.4f} nats/{unit}\n"
        f"{bytes_line}bits/char     {result['bits_per_char']:.4f}\n"
        f"perplexity    {total.perplexity:.3f}\n"
        f"accuracy      {total.accuracy:.2%}\nskipped       {skipped}"
    )


def _held_out(model, name: str, vocab: str, kind: str, train_cfg, max_chars: int | None):
    """Score the run's own held-out tail (its first `max_chars`), with progress on stderr."""
    from charrnn_cli.data import encode
    from charrnn_cli.data.idmaps import remap_ids
    from charrnn_cli.data.split import split
    from charrnn_cli.evaluate import eval_rows, score
    from charrnn_cli.progress import Reporter
    from charrnn_cli.vocab import characters_in

    cf = _run_corpus(name)
    with Reporter(f"encoding {cf.name}") as progress:
        data = encode.load(cf.path, cf.sha256, kind, progress)
    _, tail = split(data.ids, train_cfg.val_fraction)
    try:  # a fine-tuned run's vocabulary extends its corpus's: move the ids onto it
        val_ids = remap_ids(tail[:max_chars], data.vocab, vocab)
    except CharrnnError:
        raise CharrnnError(f"the corpus of run {name!r} no longer matches its vocabulary") from None
    rows = eval_rows(val_ids)
    dev = next(model.parameters()).device
    with Reporter("scoring the held-out text", unit="k chars", scale=1e3) as progress:
        total = score(model, rows, dev, progress=progress)
    chars = characters_in(rows[:, 1:]) if kind == "bytes" else total.chars
    source = f"{cf.name} (held-out {train_cfg.val_fraction:g})"
    if max_chars is not None and max_chars < len(tail):
        source += f", its first {max_chars:,} characters"
    return total, chars, source


def _text(model, corpus: str, vocab: str, kind: str, strict: bool, max_chars: int | None):
    """Score any text, read in blocks; characters outside the vocabulary are skipped (the
    Python API's `score` calls the same `score_text`)."""
    from charrnn_cli.evaluate import BLOCK_CHARS, score_text

    blocks = sources.blocks(corpus, BLOCK_CHARS)
    return score_text(model, blocks, vocab, kind, strict=strict, max_chars=max_chars)


def _run_corpus(name: str):
    """The text the run was trained on, by its sha256 (even when its name now holds other
    text); a damaged record is one line naming config.json."""
    from charrnn_cli import corpora
    from charrnn_cli.errors import CorruptFileError

    config = store.read_config(name)
    try:
        return corpora.stored(config.get("corpus"))
    except CorruptFileError as exc:
        raise CorruptFileError(f"{store.run_dir(name) / store.CONFIG}: {exc}") from None
