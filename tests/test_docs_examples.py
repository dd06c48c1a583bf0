"""The README's and docs/usage.md's command examples, run as a new user would run them: offline,
in a scratch CHARRNN_HOME and folder, shrunk by options this test appends (a few steps of a
16-unit model). An example that stops working fails the suite.

Every command line of their ```sh, ```bash and ```console blocks is run in document order (so a
run an example names must have been made by an earlier one), unless SKIP names it with the
reason; a new or changed line that can be neither run nor is named fails too, and so does a SKIP
entry no document holds any more. Tiny Shakespeare comes from the shared folder, imported under
its name as the README's offline paragraph says. The lines run in-process through `main()` (a
small interpreter gives them the shell's pipes, `;`, `&&`, `>`, `$(...)` and `$'...'`), the
completion lines in bash.
"""

from __future__ import annotations

import codecs
import contextlib
import glob
import importlib.util
import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = [
    "httpserver"
]  # the suite's own Tiny Shakespeare (made_shakespeare, tinyshakespeare)

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/usage.md")
BLOCK = re.compile(r"```(?:sh|bash|console)\n(.*?)```", re.S)

_INSTALLS = "installs packages"
_DDP = "starts several processes (tests/test_distributed.py runs data-parallel training)"
SKIP = {  # a command line (its comment left out): why this test does not run it
    "make demo": "sets up .venv and trains for a minute (the Makefile's own job)",
    "make test": "runs this suite",
    "pip install torch --index-url https://download.pytorch.org/whl/cpu": _INSTALLS,
    "pip install torch --index-url https://download.pytorch.org/whl/cu128": _INSTALLS,
    "pip install torch --index-url https://download.pytorch.org/whl/rocm6.4": _INSTALLS,
    "pip install -e .": _INSTALLS,
    "pip install 'charrnn[serve]'": _INSTALLS,
    "charrnn fetch shakespeare": "downloads 5.4 MB (tests/test_fetch_cmd.py fetches locally)",
    "charrnn fetch https://example.org/text.txt --name mytext [--sha256 HEX]": "an address for "
    "illustration (tests/test_fetch_cmd.py fetches URLs from a local server)",
    "charrnn train --preset gpu --device cuda --precision bf16 --corpus shakespeare": "needs a GPU",
    "charrnn serve --run bard": "a server that runs until stopped (tests/test_serve.py); that the "
    "run it names exists is checked here",
    "curl -s localhost:8000/v1/completions -H 'Content-Type: application/json' -d '{\"prompt\": "
    '"ROMEO:", "max_tokens": 200, "temperature": 0.8, "seed": 1}\'': "talks to the server",
    ".venv/bin/python -m pytest tests/test_sample.py -q -n 0": "runs part of this suite",
    "charrnn train --nproc 2 --corpus shakespeare --run big": _DDP,
    "torchrun --standalone --nproc-per-node 2 -m -- charrnn_cli train --corpus shakespeare "
    "--run big": _DDP,
    "torchrun --nnodes 2 --nproc-per-node 8 --rdzv-endpoint HOST:29400 -m -- charrnn_cli train "
    "...": _DDP,
}
NEEDS = {"--plot loss.png": "matplotlib", "--format onnx": "onnx"}  # run when importable
# what makes an example small: appended, so they win over the example's own values
TRAIN_SMALL = ["--max-steps", "4", "--hidden-size", "16", "--embed-size", "8", "--batch-size",
               "4", "--seq-len", "16", "--eval-chars", "2000"]  # fmt: skip
CORPORA = {"shakespeare": "tinyshakespeare"}  # the complete works need a download


def command_lines(doc: str) -> list[str]:
    """The command lines of a document's shell blocks: `$ ` prompts and `\\` continuations
    undone, comments left out, spaces collapsed."""
    found = []
    for block in BLOCK.findall((ROOT / doc).read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"^\$ ", "", line.strip())
            line = re.sub(r"(^|\s)#\s.*$", "", line)  # a comment: `# ` after a space
            if line.strip():
                found.append(" ".join(line.split()))
    return found


def test_every_skipped_example_is_still_in_the_docs():
    lines = {line for doc in DOCS for line in command_lines(doc)}
    assert not [key for key in SKIP if key not in lines]


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tinyshakespeare: bytes) -> Path:
    """The folder a new user runs the examples in, with the files they name, offline: the
    suite's own play-shaped text stands in for Tiny Shakespeare (pinned in the registry)."""
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "input.txt").write_bytes(tinyshakespeare)
    text = tinyshakespeare.decode("utf-8")
    (folder / "notes.txt").write_text(text[:40_000], encoding="utf-8")
    (folder / "letters.txt").write_text("Dear Sir, my thanks for your letter.\n" * 400, "utf-8")
    (folder / "wiki.txt").write_text("Ελληνικά, naïve café, 言語の処理.\n" * 600, "utf-8")
    (folder / "corpus.txt").write_text(text[:5_000], encoding="utf-8")
    (folder / "notes.md").write_text("# notes\n\nA page of notes in Markdown.\n" * 50, "utf-8")
    words = ["get_self", "set_name", "self_test", "get_item", "has_key", "read_line", "is_open"]
    names = [f"{a}_{b}" for a in words for b in words] + ["self"] * 7  # viz find '\bself\b'
    names[::7] = ["self"] * len(names[::7])
    (folder / "names.txt").write_text("\n".join(names * 4) + "\n", encoding="utf-8")
    monkeypatch.chdir(folder)
    monkeypatch.setenv("CHARRNN_OFFLINE", "1")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    return folder


@pytest.mark.slow
def test_the_docs_examples_work_as_written(scratch: Path):
    shell = Shell()
    shell.charrnn(["fetch", "--from", "input.txt", "--name", "tinyshakespeare"])  # offline
    for doc in DOCS:
        for line in command_lines(doc):
            if line.startswith("charrnn serve "):  # not run: the run it names must exist
                shell.charrnn(["runs", "path", line.split("--run ")[1].split()[0]])
            if line in SKIP:
                continue
            if any(flag in line and importlib.util.find_spec(module) is None
                   for flag, module in NEEDS.items()):  # fmt: skip
                continue
            try:
                shell.run(line)
            except AssertionError as exc:
                raise AssertionError(f"{doc}: `{line}`: {exc}") from None
    assert (Path(os.environ["HOME"]) / ".zfunc" / "_charrnn").is_file()


class Shell:
    """Just enough of a shell for the docs' lines: `charrnn` runs in-process through `main()`
    with the small options appended; echo, cat, head -c, jq .KEY, less, wc -c and redirection
    to a file are done here; `mkdir -p` lines go to bash."""

    def run(self, line: str) -> None:
        if line.startswith("mkdir -p "):
            env = {**os.environ, "HOME": os.environ["HOME"]}
            done = subprocess.run(["bash", "-c", line], cwd=ROOT, env=env, capture_output=True)
            assert done.returncode == 0, done.stderr.decode()
            return
        line = re.sub(
            r"\$'((?:[^'\\]|\\.)*)'",
            lambda m: shlex.quote(codecs.decode(m.group(1), "unicode_escape")),
            line,
        )
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
        command: list[str] = []
        for token in [*tokens, ";"]:
            if token in (";", "&&"):
                self.pipeline(command)
                command = []
            else:
                command.append(token)

    def pipeline(self, tokens: list[str]) -> None:
        target = None
        if ">" in tokens:
            at = tokens.index(">")
            tokens, target = tokens[:at], tokens[at + 1]
        stages, stage = [], []
        for token in tokens:
            if token == "|":
                stages.append(stage)
                stage = []
            else:
                stage.append(token)
        stages.append(stage)
        data = None
        for i, (prog, *args) in enumerate(stages):
            reader_leaves = i + 1 < len(stages) and stages[i + 1][0] in ("less", "head")
            data = self.stage(prog, args, data, reader_leaves)
        if target is not None:
            Path(target).write_text(data or "", encoding="utf-8")

    def stage(self, prog: str, args: list[str], data: str | None, reader_leaves: bool) -> str:
        if prog == "charrnn":
            return self.charrnn(args, data, limit=4096 if reader_leaves else None)
        if prog == "echo":
            return " ".join(args) + "\n"
        if prog == "cat":
            files = [f for a in args for f in sorted(glob.glob(a))]
            assert files, f"cat: nothing matches {args}"
            return "".join(Path(f).read_text(encoding="utf-8") for f in files)
        if prog == "head" and args[:1] == ["-c"]:
            source = Path(args[2]).read_text(encoding="utf-8") if len(args) > 2 else data
            return (source or "")[: int(args[1])]
        if prog == "jq":
            value = json.loads(data or "null")
            for key in args[0].strip(".").split("."):
                assert isinstance(value, dict) and key in value, f"jq: no {args[0]} in {data}"
                value = value[key]
            return json.dumps(value) + "\n"
        if prog in ("less", "head"):
            return data or ""
        if prog == "wc" and args[:1] == ["-c"]:
            path = args[1]
            if path.startswith("$(") and path.endswith(")"):
                path = self.charrnn(shlex.split(path[2:-1])[1:]).strip()
            return f"{Path(path).stat().st_size} {path}\n"
        raise AssertionError(f"this test cannot run {prog!r}: add the line to SKIP or teach Shell")

    def charrnn(self, args: list[str], stdin: str | None = None, limit: int | None = None) -> str:
        from charrnn_cli import console
        from charrnn_cli.cli import main

        args = small(args)
        out, err = (_Reader(limit) if limit else io.StringIO()), io.StringIO()
        data = io.TextIOWrapper(io.BytesIO((stdin or "").encode("utf-8")), encoding="utf-8")
        console.reset()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            saved, sys.stdin = sys.stdin, data
            try:
                code = main(args)
            finally:
                sys.stdin = saved
        console.reset()
        assert code == 0, f"charrnn {shlex.join(args)} exited {code}: {err.getvalue()[-600:]}"
        assert "Traceback" not in err.getvalue()
        return out.getvalue()


def small(args: list[str]) -> list[str]:
    """The example's arguments with the options that make it small and quick appended."""
    args = [CORPORA.get(a, a) if i and args[i - 1] == "--corpus" else a for i, a in enumerate(args)]
    if args[:1] == ["train"]:
        if "--resume" in args:
            return [*args, "--max-steps", "8"]
        if "--init-from" in args:  # the shape is the parent's
            return [*args, "--max-steps", "4", "--eval-chars", "2000"]
        return [*args, *TRAIN_SMALL]
    if args[:2] == ["fetch", "pysrc"]:
        return [*args, "--max-bytes", "200000"]
    if args[:1] == ["sample"] and "--lines" in args:
        return [*args, "--lines", "20", "--random-seed", "1"]
    return args


class _Reader(io.StringIO):
    """A reader that leaves after `limit` characters, as `less` or `head` does: the next write
    is a broken pipe."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def write(self, text: str) -> int:
        if self.tell() >= self.limit:
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(text)
