"""Corpora of any size under faults: a corpus bigger than whole-file encoding could hold in the
memory a process may use, and a corpus file that changes while it is being encoded (see
docs/reliability.md, T30 and T31)."""

from __future__ import annotations

import json
import random
import resource
import subprocess
from pathlib import Path

from charrnn_cli.data import utf8scan
from tests.helpers import TINY, background_job
from tests.warm import WarmProcess, warm_spawn

LIMIT = 2 << 30  # RLIMIT_AS: torch alone maps ~0.6 GB of it


def _write_corpus(path, size: int) -> None:
    """About `size` bytes of text, a numbered header before each copy of a 1 MB block."""
    rng = random.Random(0)
    words = ["the", "cat", "sat", "on", "mat", "café", "naïve", "dog", "log", "sea", "—"]
    block = " ".join(rng.choice(words) for _ in range(200_000)).encode()[: 1 << 20]
    with open(path, "wb") as fh:
        for copy in range(size // len(block)):
            fh.write(f"\n# copy {copy}\n".encode() + block)


@background_job("big_run")
def _big_run(folder: Path, base_env: dict[str, str]) -> dict[str, tuple[int, str, str]]:
    """Train, resume, then sample and evaluate side by side (they only read the run), each
    process under RLIMIT_AS 2 GB; (exit code, stdout, stderr) of each. A background job."""
    corpus = folder / "big.txt"
    _write_corpus(corpus, 150 << 20)
    env = {"CHARRNN_HOME": str(folder / "home"), "OMP_NUM_THREADS": "1"}

    def start(*args: str) -> WarmProcess:
        return warm_spawn(*args, env=env, base_env=base_env, limits={resource.RLIMIT_AS: LIMIT})

    def ended(proc: subprocess.Popen) -> tuple[int, str, str]:
        out, err = proc.communicate(timeout=600)
        return proc.returncode, out, err

    done = {"train": ended(start("train", "--corpus", str(corpus), "--run", "big", *TINY,
                                 "--max-steps", "4", "--eval-every", "2",
                                 "--eval-chars", "20000", "--quiet"))}  # fmt: skip
    done["resume"] = ended(start("train", "--run", "big", "--resume", "--max-steps", "6",
                                 "--quiet"))  # fmt: skip
    sampler = start("sample", "--run", "big", "--len", "50", "--random-seed", "1")
    done["eval"] = ended(start("eval", "--run", "big", "--max-chars", "20000", "--json"))
    done["sample"] = ended(sampler)
    return done


def test_a_corpus_whole_file_encoding_could_not_hold_trains_under_rlimit_as_2gb(background):
    """150 MB: reading it whole, its ids and their int64 streams took ~10 bytes a byte (over
    the limit with torch's 0.6 GB); mapped from the encoding cache it trains, resumes,
    samples and evaluates within the limit. (Run in the background from the session's start.)"""
    done = background.result("big_run")
    for step in ("train", "resume", "eval", "sample"):
        assert done[step][0] == 0, (step, done[step][2])
    assert json.loads(done["eval"][1])["chars"] > 19_000
    assert len(done["sample"][1]) >= 50


def test_a_corpus_changed_while_it_is_encoded_is_refused_in_one_line(
    cli, tmp_path, charrnn_home, monkeypatch
):
    """Its sha256 was checked, then another writer edits it during the second pass: one line,
    exit 1, no run, nothing cached, no temp file; once it is still, the same command trains."""
    corpus = tmp_path / "moving.txt"
    corpus.write_text("the cat sat on the mat.\n" * 400, encoding="utf-8")
    monkeypatch.setattr("charrnn_cli.data.encode.CHUNK", 1000)
    scan, starts = utf8scan.scan, []

    def scan_and_edit(data: bytes, offset: int, label: str):
        starts.append(offset)
        if starts.count(0) == 2 and offset == 1000:  # inside the second pass
            with open(corpus, "r+b") as fh:
                fh.seek(5000)
                fh.write(b"DOG")
        return scan(data, offset, label)

    monkeypatch.setattr(utf8scan, "scan", scan_and_edit)
    args = ("train", "--corpus", str(corpus), "--run", "m", *TINY, "--max-steps", "2")
    r = cli(*args)
    lines = [line for line in r.err.splitlines() if line.strip()]
    assert r.code == 1 and len(lines) == 1 and "Traceback" not in r.err, r.err
    assert lines[0].startswith("error: ") and "changed while it was being encoded" in lines[0]
    assert not (charrnn_home / "runs" / "m").exists()
    encoded = charrnn_home / "corpora" / "encoded"
    assert not list(encoded.glob("*.npy")) and not list(encoded.glob(".*"))
    monkeypatch.setattr(utf8scan, "scan", scan)
    assert cli(*args).code == 0
