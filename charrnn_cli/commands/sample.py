"""`charrnn sample`: stream generated text to stdout, starting with the seed, or `--lines N`.

Characters are written as they are made, flushed in small chunks, and nothing else goes to
stdout; a reader that goes away (`| head`) ends the command quietly with exit 0. `--num K`
(K > 1) and `--lines` sample many streams at once (`--parallel`); `--lines` ends with one line
on stderr counting what it dropped and why.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Annotated, Literal

import typer

from charrnn_cli import console, store
from charrnn_cli.commands.options import CheckpointOption, DeviceOption, RunOption
from charrnn_cli.errors import CharrnnError, UsageError

FLUSH_CHARS = 64  # write at least this often
FLUSH_SECONDS = 0.05  # ...or after this long, so slow devices still stream
PARALLEL = {"cpu": 64, "accelerator": 256}  # --parallel's default: streams a step


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
    lines: Annotated[
        int | None,
        typer.Option(help="Print this many whole lines, for a corpus of one item a line.", min=1),
    ] = None,
    novel: Annotated[
        bool, typer.Option(help="With --lines: drop lines found in the training corpus.")
    ] = False,
    unique: Annotated[bool, typer.Option(help="With --lines: no line twice.")] = False,
    min_line_len: Annotated[int, typer.Option(help="With --lines: drop shorter lines.", min=0)] = 1,
    max_line_len: Annotated[
        int | None,
        typer.Option(help="With --lines: drop longer lines [4x the corpus's longest line].", min=1),
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
    if top_p is not None and top_p <= 0:
        raise UsageError("--top-p must be inside (0, 1]")
    if length == 0 and not stream:
        raise UsageError("--len 0 means unbounded output: add --stream to confirm")
    if beam_width is not None and (stream or length == 0):
        raise UsageError("--beam-width needs a finite --len")
    _check_lines_options(lines, novel, unique, min_line_len, max_line_len, num, beam_width)
    seed = _read_seed(seed)
    from charrnn_cli.checkpoint import load_run
    from charrnn_cli.draw import Strategy

    batched = lines is not None or (num > 1 and length > 0 and beam_width is None)
    model, vocab, ck, name = load_run(run, checkpoint, _sampling_device(run, device, batched))
    if parallel is None:
        parallel = PARALLEL["cpu" if model.head.weight.device.type == "cpu" else "accelerator"]
    text = _known_seed(seed or "", vocab, unknown)
    strategy = Strategy(0.0 if greedy else temperature, top_k, top_p)
    with console.pipe_guard():
        if lines is not None:
            from charrnn_cli.lines import make_rules

            info = _corpus_info(name)
            rules = make_rules(info, lines, min_line_len, max_line_len, unique=unique, novel=novel)
            _write_lines(model, vocab, text, strategy, rules, parallel, random_seed, echo_seed)
            return
        heading = text if echo_seed else ""
        if batched:
            from charrnn_cli.sample import sample_many

            samples = sample_many(
                model,
                vocab,
                _ids(text, vocab),
                length,
                strategy,
                num,
                parallel,
                random_seed=random_seed,
                unigram=ck.get("unigram"),
            )
            for k, body in enumerate(samples):
                _write((separator if k else "") + heading + body)
        else:
            for k in range(num):
                _write((separator if k else "") + heading)
                rs = None if random_seed is None else random_seed + k
                _write_one(model, vocab, text, length, strategy, beam_width, rs, ck.get("unigram"))
        if sys.stdout.isatty():
            _write("\n")


def _read_seed(seed: str | None) -> str:
    """The seed's text (stdin's for `-`, of any length); bytes that are not UTF-8, from stdin or
    in the argument itself, are a usage error saying where, never unknown characters."""
    if seed == "-":
        stream = getattr(sys.stdin, "buffer", None)
        data = (
            stream.read()
            if stream is not None
            else sys.stdin.read().encode("utf-8", "surrogateescape")
        )
        where = "--seed - (stdin)"
        if not data:
            raise UsageError("--seed - read nothing from stdin")
    elif seed and any("\udc80" <= c <= "\udcff" for c in seed):  # undecodable argv bytes
        data, where = os.fsencode(seed), "--seed"
    else:
        return seed or ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"the seed from {where} is not UTF-8 text (byte {exc.start}: "
            f"{data[exc.start : exc.start + 1]!r}); convert it to UTF-8 first"
        ) from None


def _known_seed(text: str, vocab: str, unknown: str) -> str:
    """The seed, with what the run never saw named as an error or skipped."""
    from charrnn_cli.encode import unknown_chars

    missing = unknown_chars(text, vocab)
    if missing and unknown == "error":
        shown = ", ".join(repr(c) for c in missing[:10])
        raise UsageError(
            f"the seed has characters this run never saw: {shown}; "
            "remove them or pass --unknown skip"
        )
    return "".join(c for c in text if c in vocab) if missing else text


def _ids(text: str, vocab: str) -> list[int]:
    stoi = {c: i for i, c in enumerate(vocab)}
    return [stoi[c] for c in text]


def _write_one(model, vocab, text, length, strategy, beam_width, random_seed, unigram) -> None:
    """One sample, streamed as it is made (a beam search's continuation at once)."""
    from charrnn_cli.sample import beam_search, sample

    seed_ids = _ids(text, vocab)
    if beam_width is not None:
        if not seed_ids:
            raise UsageError("--beam-width needs a --seed to start from")
        _write(beam_search(model, vocab, seed_ids, length, beam_width))
        return
    limit = None if length == 0 else length
    _stream(
        sample(model, vocab, seed_ids, limit, strategy, random_seed=random_seed, unigram=unigram)
    )


def _check_lines_options(lines, novel, unique, min_line_len, max_line_len, num, beam_width):
    if lines is None:
        flags = {
            "--novel": novel,
            "--unique": unique,
            "--min-line-len": min_line_len != 1,
            "--max-line-len": max_line_len is not None,
        }
        given = [flag for flag, on in flags.items() if on]
        if given:
            raise UsageError(f"{given[0]} needs --lines")
        return
    if num != 1 or beam_width is not None:
        raise UsageError(f"--lines does not mix with {'--num' if num != 1 else '--beam-width'}")
    if max_line_len is not None and min_line_len > max_line_len:
        raise UsageError("--min-line-len is over --max-line-len")


def _sampling_device(run: str | None, device: str, batched: bool = False) -> str:
    """One character per step is latency-bound: for models up to 1024 units the numpy stepper
    on the CPU outruns a GPU's kernel launches (2x128 LSTM: ~37k vs ~2k chars/s on an H200),
    so `auto` samples those on the CPU. Many streams a step (`--lines`, `--num`) are matrix
    products, where a GPU is at home: `auto` leaves those to `device.pick`."""
    if device != "auto" or batched:
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


def _write_lines(model, vocab, seed, strategy, rules, parallel, random_seed, echo_seed) -> None:
    """--lines: stream the lines, then count the dropped ones on stderr."""
    from charrnn_cli.lines import Tally, sample_lines

    tally = Tally()
    skip = 0 if echo_seed else len(seed.rsplit("\n", 1)[-1])
    made = sample_lines(
        model, vocab, seed, rules, strategy, tally, parallel=parallel, random_seed=random_seed
    )
    _stream(line[skip:] + "\n" for line in made)
    console.log(tally.summary(rules))
    if tally.gave_up:
        raise CharrnnError(
            f"gave up after {tally.tries} tries with {tally.kept} of {rules.count} lines: too "
            "many were dropped (see above); try another --temperature or fewer filters"
        )


def _corpus_info(name: str) -> dict | None:
    try:
        info = store.read_config(name).get("corpus")
    except CharrnnError:
        return None
    return info if isinstance(info, dict) and info.get("path") else None
