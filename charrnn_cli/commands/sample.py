"""`charrnn sample`: stream generated text to stdout, starting with the seed.

Characters are written as they are made, flushed in small chunks, and nothing else goes to
stdout; a reader that goes away (`| head`) ends the command quietly with exit 0.
"""

from __future__ import annotations

import sys
import time
from typing import Annotated, Literal

import typer

from charrnn_cli import console, store
from charrnn_cli.commands.options import CheckpointOption, DeviceOption, RunOption
from charrnn_cli.errors import CharrnnError, UsageError

FLUSH_CHARS = 64  # write at least this often
FLUSH_SECONDS = 0.05  # ...or after this long, so slow devices still stream


def sample(
    run: RunOption = None,
    checkpoint: CheckpointOption = "best",
    length: Annotated[
        int,
        typer.Option(
            "--len", "--length", help="Characters to generate (0 with --stream: unbounded).", min=0
        ),
    ] = 1000,
    seed: Annotated[
        str | None,
        typer.Option("--seed", "--prime", help="Priming text fed first (- reads stdin)."),
    ] = None,
    echo_seed: Annotated[bool, typer.Option(help="Start the output with the seed.")] = True,
    temperature: Annotated[
        float, typer.Option(help="Sharper below 1, wilder above; 0 is greedy.", min=0.0, max=100.0)
    ] = 1.0,
    top_k: Annotated[
        int | None, typer.Option(help="Draw only from the k likeliest.", min=1)
    ] = None,
    top_p: Annotated[
        float | None,
        typer.Option(
            help="Draw from the smallest set with this probability, in (0, 1].", min=0.0, max=1.0
        ),
    ] = None,
    greedy: Annotated[bool, typer.Option(help="Always the likeliest character.")] = False,
    beam_width: Annotated[
        int | None, typer.Option(help="The likeliest continuation by beam search.", min=1, max=1024)
    ] = None,
    random_seed: Annotated[int | None, typer.Option(help="Same seed, same text.", min=0)] = None,
    num: Annotated[int, typer.Option(help="How many samples.", min=1)] = 1,
    separator: Annotated[str, typer.Option(help="Between samples.")] = "\n\n",
    stream: Annotated[
        bool, typer.Option(help="With --len 0: generate until the reader stops.")
    ] = False,
    unknown: Annotated[
        Literal["error", "skip"], typer.Option(help="Seed characters outside the vocabulary.")
    ] = "error",
    device: DeviceOption = "auto",
) -> None:
    """Generate text from a trained run; characters stream to stdout."""
    if top_p is not None and top_p <= 0:
        raise UsageError("--top-p must be inside (0, 1]")
    if length == 0 and not stream:
        raise UsageError("--len 0 means unbounded output: add --stream to confirm")
    if beam_width is not None and (stream or length == 0):
        raise UsageError("--beam-width needs a finite --len")
    if seed == "-":
        seed = sys.stdin.read()
        if not seed:
            raise UsageError("--seed - read nothing from stdin")
    from charrnn_cli import vocab as vocabulary
    from charrnn_cli.checkpoint import configs, load_run
    from charrnn_cli.encode import unknown_chars
    from charrnn_cli.sample import Strategy, beam_search
    from charrnn_cli.sample import sample as generate

    model, vocab, ck, _ = load_run(run, checkpoint, _sampling_device(run, device))
    kind = configs(ck)[0].vocab
    text = seed or ""
    missing = unknown_chars(text, vocab) if kind == "chars" else []
    if missing and unknown == "error":
        shown = ", ".join(repr(c) for c in missing[:10])
        raise UsageError(
            f"the seed has characters this run never saw: {shown}; "
            "remove them or pass --unknown skip"
        )
    if missing:
        text = "".join(c for c in text if c in vocab)
    seed_ids = vocabulary.seed_ids(text, kind, vocab)
    # a byte run samples bytes: decoded as they come, invalid sequences shown as U+FFFD
    decoder = vocabulary.Utf8Bytes() if kind == "bytes" else None
    strategy = Strategy(0.0 if greedy else temperature, top_k, top_p)
    limit = None if length == 0 else length
    with console.pipe_guard():
        for k in range(num):
            if k:
                _write(separator)
            if echo_seed and text:
                _write(text)
            if beam_width is not None:
                if not seed_ids:
                    raise UsageError("--beam-width needs a --seed to start from")
                best = beam_search(model, vocab, seed_ids, length, beam_width)
                _write("".join(vocabulary.readable([best], decoder)))
            else:
                rs = None if random_seed is None else random_seed + k
                chars = generate(model, vocab, seed_ids, limit, strategy, random_seed=rs,
                                 unigram=ck.get("unigram"))  # fmt: skip
                _stream(chars if decoder is None else vocabulary.readable(chars, decoder))
        if sys.stdout.isatty():
            _write("\n")
    if decoder is not None and decoder.replaced:
        console.warn(f"{decoder.replaced} invalid UTF-8 byte sequences were shown as U+FFFD")


def _sampling_device(run: str | None, device: str) -> str:
    """One character per step is latency-bound: for models up to 1024 units the numpy stepper
    on the CPU outruns a GPU's kernel launches (2x128 LSTM: ~37k vs ~2k chars/s on an H200),
    so `auto` samples those on the CPU."""
    if device != "auto":
        return device
    try:
        hidden = store.read_config(store.resolve(run))["model"]["hidden_size"]
    except (CharrnnError, KeyError, TypeError):
        return device
    return "cpu" if hidden <= 1024 else device


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _stream(chars) -> None:
    buf: list[str] = []
    next_flush = time.monotonic() + FLUSH_SECONDS
    for ch in chars:
        buf.append(ch)
        if len(buf) >= FLUSH_CHARS or time.monotonic() >= next_flush:
            _write("".join(buf))
            buf.clear()
            next_flush = time.monotonic() + FLUSH_SECONDS
    if buf:
        _write("".join(buf))
