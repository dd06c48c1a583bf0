"""Small helpers shared by the test modules: one copy each (fixtures live in conftest.py)."""

from __future__ import annotations

import ctypes
import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest

import charrnn_cli


def require_tool(path: str | None, name: str, install: str) -> str:
    """The tool's path. Where it is missing the test skips, saying how to install it, except
    with CI set: .ci/run installs the tool, so there a skip would hide a check that never ran,
    and the test fails instead."""
    if path is None:
        why = f"{name} is not installed ({install})"
        if os.environ.get("CI"):
            pytest.fail(f"{why}, and CI is set: a check that needs it must run", pytrace=False)
        pytest.skip(why)
    return path


TINY = ["--hidden-size", "16", "--embed-size", "8", "--layers", "1", "--batch-size", "8",
        "--seq-len", "16"]  # fmt: skip
# a small, very regular text that a 16-unit model learns in seconds
TINY_LINES = ["the cat sat on the mat.", "a dog ran to the log.", "we see the sea and the sky."]
TINY_TEXT = "\n".join(TINY_LINES * 120) + "\n"
# the text of the shared template run `m` (conftest.py's `template`)
TEMPLATE_TEXT = "\n".join(["the cat sat on the mat.", "a dog ran to the log."] * 150) + "\n"


def need_tool(name: str) -> str:
    """The path of program `name`: a skip where it is not installed, but a failure under CI
    (env CI set), whose .ci/run installs it: there a missing tool must not pass unseen."""
    import shutil

    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed, and CI runs this test (.ci/run installs it)")
        pytest.skip(f"{name} is not installed")
    return found


def need_module(name: str):
    """Module `name` imported, for a test module: skipped where it is missing, failed under CI
    (the test extra installs it)."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(
                f"{name} is not installed, and CI runs these tests (pip install -e .[test])"
            )
        pytest.skip(f"{name} is not installed", allow_module_level=True)


def made_play(size: int, seed: int = 0) -> bytes:
    """`size` bytes of a play-shaped ASCII text (speakers, then lines of words), made from
    `seed`: what the fetch tests serve as a registry corpus (see httpserver's `tinyshakespeare`)."""
    import random

    rng = random.Random(seed)
    speakers = ["ROMEO", "JULIET", "FIRST CITIZEN", "MENENIUS", "KING RICHARD III", "NURSE"]
    words = ("the and my thou thy of to a is that not me with it for be his your this but he have "
             "what so him by will shall love good lord now come sir").split()  # fmt: skip
    parts, total = [], 0
    while total < size:
        lines = [" ".join(rng.choices(words, k=rng.randint(4, 9))).capitalize()
                 + rng.choice(".,;!?") for _ in range(rng.randint(1, 5))]  # fmt: skip
        speech = f"{rng.choice(speakers)}:\n" + "\n".join(lines) + "\n\n"
        parts.append(speech)
        total += len(speech)
    return "".join(parts).encode("ascii")[:size]


# `python -c` that pins a registry corpus (NAME SHA256 SIZE after the code) and runs charrnn with
# the rest of its arguments: a subprocess that fetches the text a test serves in its place
PINNED_MAIN = (
    "import sys; from dataclasses import replace; from charrnn_cli import corpora; "
    "e = corpora.REGISTRY[sys.argv[1]]; "
    "corpora.REGISTRY[e.name] = replace(e, sha256=sys.argv[2], size=int(sys.argv[3])); "
    "del sys.argv[1:4]; from charrnn_cli.cli import run; run()"
)


def pinned_charrnn(name: str) -> list[str]:
    """The command line of a charrnn process that sees registry corpus `name` pinned as it is in
    this process (a test's `tinyshakespeare` fixture pins the suite's own text)."""
    from charrnn_cli import corpora

    entry = corpora.REGISTRY[name]
    return [sys.executable, "-c", PINNED_MAIN, name, str(entry.sha256), str(entry.size)]


def metrics(home: Path, run: str) -> list[dict]:
    path = home / "runs" / run / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def val_losses(home: Path, run: str) -> dict[int, float]:
    return {r["step"]: r["val_loss"] for r in metrics(home, run) if "val_loss" in r}


def runs_left(home: Path) -> list[str]:
    folder = home / "runs"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def one_line(err: str) -> str:
    """The only line on stderr, checked to be an `error:` line and no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def one_error_line(err: str) -> str:
    """The error line, checked to be the only one and the last (a "fetching" line may precede)."""
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert [line.startswith("error: ") for line in lines].count(True) == 1, err
    assert lines[-1].startswith("error: ") and len(lines) <= 2, err
    return lines[-1]


def cache_files() -> list[str]:
    """The files in the corpus cache, the stored texts (blobs/) included, by relative path."""
    from charrnn_cli.storage import paths

    folder = paths.cache_dir()
    found = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
    return sorted(str(p.relative_to(folder)) for p in found)


def stdin_bytes(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    """Make `data` the process's stdin for in-process commands."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def tiny_model(vocab_size: int = 7, embed_size: int = 5, hidden_size: int = 12, *,
               layers: int = 2, cell: str = "lstm", seed: int | None = 0, **kw):  # fmt: skip
    """A small CharRNN in eval mode, its weights drawn from `seed` (None: left as they are)."""
    import torch

    from charrnn_cli.config import ModelConfig
    from charrnn_cli.model import CharRNN

    if seed is not None:
        torch.manual_seed(seed)
    cfg = ModelConfig(cell=cell, vocab_size=vocab_size, embed_size=embed_size,
                      hidden_size=hidden_size, layers=layers, **kw)  # fmt: skip
    return CharRNN(cfg).eval()


def spawn(
    *args: str, env: dict | None = None, base_env: dict | None = None, shell: str = "", **kw
) -> subprocess.Popen:
    """`python -m charrnn_cli ARGS` in a subprocess with the test's environment (or `base_env`,
    as a background job passes) updated with `env`. `shell`: commands `sh` runs first, such as
    `trap "" HUP` or `ulimit -v N`, which the process then inherits (a preexec_fn without
    threads' hazards)."""
    base = os.environ if base_env is None else base_env
    full_env = {**base, "PYTHONUNBUFFERED": "1", **(env or {})}
    cmd = [sys.executable, "-m", "charrnn_cli", *args]
    if shell:
        cmd = ["sh", "-c", f'{shell}; exec "$0" "$@"', *cmd]
    return subprocess.Popen(
        cmd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def train_tiny(folder: Path, run: str, *args: str, steps: int = 60) -> Path:
    """Train a tiny run on a small regular text in `folder`/home (in-process); its run folder,
    for a module-scoped fixture to copy into each test's home."""
    import pytest

    from charrnn_cli import console
    from charrnn_cli.cli import main

    corpus = folder / "corpus.txt"
    lines = ["the cat sat on the mat.", "a dog ran to the log.", "we see the sea and the sky."]
    corpus.write_text("\n".join(lines * 120) + "\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHARRNN_HOME", str(folder / "home"))
        console.reset()
        code = main(["train", "--corpus", str(corpus), "--run", run, *TINY, "--max-steps",
                     str(steps), "--eval-every", "30", "--quiet", *args])  # fmt: skip
    assert code == 0
    return folder / "home" / "runs" / run


# Jobs that only start processes and wait for them, run on two background threads from the
# start of the session (conftest.py's `background`) while the tests go on: name -> job(folder,
# env). A job never touches os.environ (the tests change it): it passes `env`, a copy taken
# when the session started, to every process it starts.
BACKGROUND_JOBS: dict[str, tuple[str, Callable[[Path, dict[str, str]], object]]] = {}


def background_job(name: str, fixture: str = ""):
    """Register a background job under `name`; it starts only when a collected test uses the
    fixture that reads its result (`fixture`, or by default the one named `name`)."""

    def register(job):
        BACKGROUND_JOBS[name] = (fixture or name, job)
        return job

    return register


def wait_for_line(proc: subprocess.Popen, needle: str, timeout: float = 60.0) -> list[str]:
    """Read the process's stderr until a line holds `needle`; return the lines read."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen.append(line)
        if needle in line:
            return seen
        if not line and proc.poll() is not None:
            raise AssertionError(f"exited early ({proc.returncode}): {''.join(seen)}")
    raise AssertionError(f"no {needle!r} from the process: {''.join(seen)}")


def wait_for_metrics(
    log: Path, alive: Callable[[], bool], timeout: float = 60.0, drain=None
) -> None:
    """Until the trainer has logged a step to `log` (its metrics.jsonl); `alive` says whether
    it still runs, `drain` (if given) reads its terminal meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if drain is not None:
            drain()
        if log.exists() and log.stat().st_size:
            return
        assert alive(), "the trainer exited early"
        time.sleep(0.02)
    raise AssertionError("no progress from the trainer")


# where the charrnn_cli under test lives: the workers of a torchrun job import the same code
PKG_ROOT = str(Path(charrnn_cli.__file__).parent.parent)
TORCHRUN_BIN = Path(sys.executable).with_name("torchrun")
TORCHRUN = (
    [str(TORCHRUN_BIN)]
    if TORCHRUN_BIN.exists()
    else [sys.executable, "-m", "torch.distributed.run"]
)
# a tiny LSTM; a step-based schedule so every run of a chain sees the same learning rates
# fp32: two ranks of 4 streams and one process of 8 sum their products in different orders,
# equal to DIST_TOL in fp32, not in bf16 (which `--precision auto` is on CPUs with AMX)
DIST_OPTS = ["--hidden-size", "16", "--embed-size", "8", "--layers", "1", "--seq-len", "16",
             "--eval-every", "10", "--lr-schedule", "constant", "--device", "cpu",
             "--precision", "fp32"]  # fmt: skip
DIST_TOL = 1e-4


def dist_env(home: Path, base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """The environment of a data-parallel job: no inherited ranks or faults, one thread;
    made from `base` (a background job's copy) or else os.environ."""
    base = os.environ if base is None else base
    env = {k: v for k, v in base.items() if not k.startswith("CHARRNN_FAULT")}
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    env.update(
        CHARRNN_HOME=str(home), OMP_NUM_THREADS="1", NO_COLOR="1", PYTHONUNBUFFERED="1",
        CHARRNN_DIST_TIMEOUT="30",  # a lost rank fails the collective well inside the timeouts
        PYTHONPATH=os.pathsep.join(filter(None, [PKG_ROOT, base.get("PYTHONPATH")])),
    )  # fmt: skip
    env.update(extra)
    return env


def run_cmd(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float = 90):
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def torchrun(log_dir: Path, *after_dashdash: str) -> list[str]:
    """`torchrun --standalone --nproc-per-node 2 ... -m -- charrnn_cli train ...` (the `--`
    keeps torchrun from reading charrnn's options, such as --run, as its own)."""
    return [*TORCHRUN, "--standalone", "--nproc-per-node", "2", "--log-dir", str(log_dir),
            "-m", "--", *after_dashdash]  # fmt: skip


def without_root_override() -> None:
    """preexec_fn: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set, so that
    even root is refused by a folder's permissions after exec (no-op for other users)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


VIZ_TEXT = "def f(x):\n\treturn \"<a href='//x'>\" & x  # </script>\n"


class Page(HTMLParser):
    """The characters of <pre id=t> with their classes, and the JSON data block."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.chars: list[str] = []
        self.classes: list[str] = []
        self.buttons: list[str] = []
        self.data_text = ""
        self._where: str | None = None
        self.feed(page)
        self.data = json.loads(self.data_text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "i" and self._where == "t":
            self.classes.append(a.get("class", ""))
            self.chars.append("")
            self._where = "char"
        elif tag == "pre" and a.get("id") == "t":
            self._where = "t"
        elif tag == "script" and a.get("id") == "data":
            self._where = "data"
        elif tag == "button":
            self.buttons.append("")
            self._where = "button"

    def handle_endtag(self, tag):
        if tag == "i" and self._where == "char":
            self._where = "t"
        elif tag in ("pre", "script", "button"):
            self._where = None

    def handle_data(self, data):
        if self._where == "char":
            self.chars[-1] += data
        elif self._where == "data":
            self.data_text += data
        elif self._where == "button":
            self.buttons[-1] += data


def surprise_page(text: str = VIZ_TEXT) -> str:
    """A surprise page of `text` with made-up bits and top characters."""
    from charrnn_cli.viz import pages

    bits = [None if i == 0 else (i % 20) * 0.5 for i in range(len(text))]
    return pages.surprise_page(
        title="t", note="n", text=text, bits=bits, top_chars=[["e", "<", "\n"]] * len(text),
        top_p=[[0.5, 0.25, 0.125]] * len(text), mean=1.2345,
    )  # fmt: skip


PAGE_SAMPLER = Path(charrnn_cli.__file__).parent / "export" / "sampler.js"


def page_sampler(path: Path, *args: str, echo_seed: bool = False) -> str:
    """What the exported page's own sampler (export/sampler.js, run by node) writes for the
    model at `path` (the seed echoed only with `echo_seed`, its default being to echo it)."""
    node = shutil.which("node")
    assert node is not None
    echo = [] if echo_seed else ["--no-echo-seed"]
    done = subprocess.run([node, str(PAGE_SAMPLER), str(path), *args, *echo],
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    return done.stdout


def fixed_examples(count: int):
    """Hypothesis settings for `count` examples drawn the same on every run (CI is never red
    by a new draw), with no deadline and no example database."""
    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=count,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
