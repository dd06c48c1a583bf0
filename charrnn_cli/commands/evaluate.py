"""`charrnn eval`: score a run on its own held-out text, or on any text.

Reports characters scored, loss in nats per character, bits per character, perplexity and
next-character accuracy; `--json` prints one object on stdout for scripts
(`charrnn eval --json | jq .bits_per_char`). Text from `--corpus` is read in blocks, so memory
stays bounded whatever its size.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import IO, Annotated

import typer

from charrnn_cli import console, paths, store
from charrnn_cli.commands.options import CheckpointOption, DeviceOption, RunOption
from charrnn_cli.errors import CharrnnError, UsageError

BLOCK_CHARS = 4_000_000  # characters scored per block of a --corpus text


def evaluate(
    run: RunOption = None,
    checkpoint: CheckpointOption = "best",
    corpus: Annotated[
        str | None,
        typer.Option(help="Score this text instead: a corpus NAME, a PATH, or - for stdin."),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Refuse text with characters outside the vocabulary.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    device: DeviceOption = "auto",
) -> None:
    """Score a run: loss (nats/char), bits/char, perplexity and accuracy."""
    from charrnn_cli import encode
    from charrnn_cli.checkpoint import configs, load_run
    from charrnn_cli.data import split
    from charrnn_cli.evaluate import Score, eval_rows, score
    from charrnn_cli.lineage import remap

    model, vocab, ck, name = load_run(run, checkpoint, device)
    dev = next(model.parameters()).device
    total, skipped = Score(), 0
    if corpus is None:
        _, tcfg = configs(ck)
        cf = _run_corpus(name)
        data = encode.load(cf.path, cf.sha256)
        try:  # a fine-tuned run's vocabulary extends its corpus's: move the ids onto it
            data = remap(data, vocab)
        except CharrnnError:
            raise CharrnnError(
                f"the corpus of run {name!r} no longer matches its vocabulary"
            ) from None
        _, val_ids = split(data.ids, tcfg.val_fraction)
        total = score(model, eval_rows(val_ids), dev)
        source = f"{cf.name} (held-out {tcfg.val_fraction:g})"
    else:
        source = corpus
        for text in _blocks(corpus):
            ids, dropped = encode.encode_text(text, vocab)
            if dropped and strict:
                shown = ", ".join(repr(c) for c in encode.unknown_chars(text, vocab)[:10])
                raise UsageError(
                    f"the text has characters outside the run's vocabulary: {shown} "
                    "(without --strict they are counted and skipped)"
                )
            skipped += dropped
            if len(ids) >= 2:
                total.add(score(model, eval_rows(ids), dev))
        if total.chars == 0:
            raise UsageError("the text has fewer than 2 characters the run knows: nothing to score")
    result = {
        "run": name, "checkpoint": checkpoint, "text": source, "chars": total.chars,
        "loss": total.loss, "bits_per_char": total.bits_per_char,
        "perplexity": total.perplexity, "accuracy": total.accuracy, "skipped": skipped,
    }  # fmt: skip
    if skipped:
        console.warn(f"{skipped} characters outside the vocabulary were skipped")
    if json_out:
        console.out_json(result)
        return
    console.out(
        f"run           {name} ({checkpoint})\ntext          {source}\n"
        f"characters    {total.chars:,}\nloss          {total.loss:.4f} nats/char\n"
        f"bits/char     {total.bits_per_char:.4f}\nperplexity    {total.perplexity:.3f}\n"
        f"accuracy      {total.accuracy:.2%}\nskipped       {skipped}"
    )


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


def _blocks(spec: str) -> Iterator[str]:
    """The text of `spec` in blocks of at most BLOCK_CHARS characters; bytes that are not UTF-8
    are a CorruptFileError (exit 4) naming the file and the byte offset."""

    from charrnn_cli.text import read_blocks

    if spec == "-":
        stdin: IO[bytes] = sys.stdin.buffer
        yield from read_blocks(stdin, "stdin", BLOCK_CHARS)
        return
    path = paths.user_path(spec)
    if not path.exists() or path.is_dir():  # a name; a pipe or a device streams like a file
        from charrnn_cli import corpora

        path = corpora.resolve(spec).path
    with open(path, "rb") as fh:
        yield from read_blocks(fh, path, BLOCK_CHARS)
