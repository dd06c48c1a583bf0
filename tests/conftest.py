"""Shared fixtures: every test gets its own CHARRNN_HOME, a `cli` runner over `main()`, and
tiny trained runs built once per session and copied into the tests that read them."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import BACKGROUND_JOBS, TEMPLATE_TEXT, TINY, TINY_TEXT

# The tests' models are tiny: a second thread only adds OpenMP's hand-offs (and its spinning,
# many times the work on a busy machine). Set before torch is first imported, here and in every
# charrnn process a test starts; a developer's own OMP_NUM_THREADS wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_configure(config: pytest.Config) -> None:
    """Start from the default dispositions of Ctrl-C and Ctrl-\\: a shell starts `pytest &`
    with both ignored, which the signal tests' trainers would inherit (and rightly keep)."""
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGQUIT) == signal.SIG_IGN:
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)


@pytest.fixture(autouse=True)
def charrnn_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point both stores at a fresh folder; no test touches the user's real directories."""
    home = tmp_path / "home"
    monkeypatch.setenv("CHARRNN_HOME", str(home))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("CHARRNN_MIRROR", raising=False)
    monkeypatch.delenv("CHARRNN_OFFLINE", raising=False)
    monkeypatch.delenv("CHARRNN_DEBUG", raising=False)
    return home


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run `charrnn ARGS...` in-process through the real error boundary; return code, out, err."""
    from charrnn_cli import console
    from charrnn_cli.cli import main

    def invoke(*args: str) -> Result:
        console.reset()
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


@pytest.fixture
def tiny_text() -> str:
    """A small, very regular text that a 16-unit model learns in seconds."""
    return TINY_TEXT


@pytest.fixture
def tiny_corpus(tmp_path: Path, tiny_text: str) -> Path:
    path = tmp_path / "tiny.txt"
    path.write_text(tiny_text, encoding="utf-8")
    return path


def train_once(home: Path, *args: str) -> None:
    """`charrnn train ARGS --quiet` in this process, with `home` as CHARRNN_HOME."""
    from charrnn_cli import console
    from charrnn_cli.cli import main

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHARRNN_HOME", str(home))
        mp.setenv("NO_COLOR", "1")
        for name in ("CHARRNN_MIRROR", "CHARRNN_OFFLINE", "CHARRNN_DEBUG"):
            mp.delenv(name, raising=False)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            console.reset()  # a test's captured output never holds this training's
            code = main(["train", *args, "--quiet"])
        console.reset()
    assert code == 0, (args, err.getvalue())


@pytest.fixture(scope="session")
def trained_homes(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """`trained_homes(RUN, *OPTIONS, text=...)`: a CHARRNN_HOME holding run RUN trained on
    `text` with OPTIONS, built the first time a test asks for it and kept for the session.
    Tests never change it: they copy it (`trained_run`)."""
    made: dict[tuple, Path] = {}

    def get(run: str, *options: str, text: str = TINY_TEXT) -> Path:
        key = (run, options, text)
        if key not in made:
            root = tmp_path_factory.mktemp(f"trained-{run}")
            corpus = root / "tiny.txt"
            corpus.write_text(text, encoding="utf-8")
            train_once(root / "home", "--corpus", str(corpus), "--run", run, *options)
            made[key] = root / "home"
        return made[key]

    return get


@pytest.fixture
def trained_run(trained_homes, charrnn_home: Path) -> Callable[..., str]:
    """`trained_run(RUN, *OPTIONS, text=...)`: copy the session's run (store and corpus cache)
    into this test's CHARRNN_HOME; returns RUN."""

    def copy(run: str, *options: str, text: str = TINY_TEXT) -> str:
        shutil.copytree(trained_homes(run, *options, text=text), charrnn_home, dirs_exist_ok=True)
        return run

    return copy


@pytest.fixture(scope="session")
def template(trained_homes) -> Path:
    """One tiny run `m` (6 steps) for the whole session; tests get a copy (`run`)."""
    return trained_homes("m", *TINY, "--max-steps", "6", text=TEMPLATE_TEXT) / "runs" / "m"


@pytest.fixture
def run(template: Path, charrnn_home: Path) -> Path:
    """A copy of the template run `m` in this test's store; its folder."""
    folder = charrnn_home / "runs" / "m"
    shutil.copytree(template, folder)
    return folder


class Background:
    """The session's background jobs (tests/helpers.py's BACKGROUND_JOBS), two at a time in
    the order registered: their processes fill the cores that the in-process tests, a launcher
    starting alone or a single encoding process leave idle."""

    def __init__(self, names: list[str]) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="charrnn-tests-"))
        drop = ("CHARRNN_MIRROR", "CHARRNN_OFFLINE", "CHARRNN_DEBUG", "CHARRNN_HOME")
        self.env = {k: v for k, v in os.environ.items()
                    if k not in drop and not k.startswith("CHARRNN_FAULT")}  # fmt: skip
        self.env.update(NO_COLOR="1", PYTHONUNBUFFERED="1")
        self.pool = ThreadPoolExecutor(2, thread_name_prefix="background")
        self.futures: dict[str, Future] = {
            name: self.pool.submit(self._run, name) for name in names
        }

    def _run(self, name: str):
        folder = self.root / name
        folder.mkdir()
        return BACKGROUND_JOBS[name][1](folder, dict(self.env))

    def result(self, name: str):
        """The job's result; a job not started yet runs here and now instead."""
        future = self.futures.get(name)
        if future is None or future.cancel():
            return self._run(name)
        return future.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.root, ignore_errors=True)


_background: Background | None = None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules holding a slow test (marked `slow`, or reading a background job) first, each
    module whole and in its own order: pytest-xdist hands out whole modules (a module's
    fixtures are built once), so the long ones start at once and the many short ones fill in
    around them, rather than one long module ending the run alone on one core."""
    split = [item.nodeid for item in items if "::" in item.nodeid.partition("[")[2]]
    assert not split, f"an id holds '::', which splits its module in two under xdist: {split}"
    slow = {item.module for item in items if item.get_closest_marker("slow")
            or "background" in getattr(item, "fixturenames", ())}  # fmt: skip
    items.sort(key=lambda item: item.module not in slow)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the background jobs that the collected tests will read. Under pytest-xdist every
    worker collects every test but runs only some, so there a job runs when a test asks for
    it, in that test's worker (the other workers keep the cores busy meanwhile)."""
    global _background
    if session.config.option.collectonly:
        return
    if os.environ.get("PYTEST_XDIST_WORKER"):
        _background = Background([])
        return
    used = set().union(*(getattr(item, "fixturenames", ()) for item in session.items))
    _background = Background([name for name, (f, _) in BACKGROUND_JOBS.items() if f in used])


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _background is not None:
        _background.close()


@pytest.fixture(scope="session")
def background() -> Background:
    """The session's background jobs: `background.result(NAME)`."""
    global _background
    if _background is None:
        _background = Background([])
    return _background
