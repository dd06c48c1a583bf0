"""What a training job is made of, torch-free: the corpus record, the job, the held-out split.

`jobs.prepare` builds a `Job` and checks its data before anything is written, and `charrnn
eval` scores a run on the same held-out tail the trainer used; neither needs torch for that,
so these live here rather than in the training loop. numpy is imported inside the functions
(ruff keeps it off the module level outside the torch layer).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from charrnn_cli.config import ModelConfig, TrainConfig, to_dict
from charrnn_cli.data.split import split
from charrnn_cli.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

    from charrnn_cli.corpora import CorpusFile
    from charrnn_cli.data.encode import Encoded


@dataclass(frozen=True)
class CorpusInfo:
    """The corpus a run trains on, as its config.json stores it."""

    name: str
    path: str  # where it was read; a resume that finds it changed fetches it again by name
    sha256: str
    source: str  # url, "pysrc", "file:<abs path>", or "stdin"

    @classmethod
    def of(cls, cf: CorpusFile) -> CorpusInfo:
        return cls(cf.name, str(cf.path), cf.sha256, cf.source)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CorpusInfo:
        return cls(**{k: str(data.get(k, "")) for k in ("name", "path", "sha256", "source")})


@dataclass
class ParentRecord:
    """The run a fine-tuned run started from (`train --init-from`), as config.json stores it
    under `parent`: the checkpoint's step and sha256 are filled in when it is read."""

    run: str
    checkpoint: str  # best | last
    corpus: dict[str, Any]  # the parent's corpus record
    added: str  # the new corpus's characters the parent lacked, in the order they were appended
    step: int | None = None
    sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Job:
    """One training run to start or continue, checked and ready."""

    name: str
    model: ModelConfig
    train: TrainConfig
    data: Encoded
    corpus: CorpusInfo
    resume: bool = False
    preset: str = "tutorial"
    parent: ParentRecord | None = None  # fine-tuning: the parent run; None from scratch
    # resumed with the stored precision (none given anew): fp32 where the device lacks it
    precision_fallback: bool = False
    auto: dict[str, Any] | None = None  # --preset auto: what it chose and why (autosize.py)

    def record(self, **facts: Any) -> dict[str, Any]:
        """The run's config.json for a new run: the configs, the corpus, the vocabulary, then
        `facts` about the trainer (parameters, device, world_size, torch), and the parent."""
        config = {"name": self.name, "preset": self.preset, **to_dict(self.model, self.train)}
        config.update(corpus=self.corpus.to_dict(), vocab=self.data.vocab, **facts)
        if self.auto is not None:
            config["auto"] = self.auto
        if self.parent is not None:  # fine-tuned: the run it started from (lineage.py)
            config["parent"] = self.parent.to_dict()
        return config

    def train_section(self) -> dict[str, Any]:
        """The train section of config.json, as a resume stores it anew."""
        return to_dict(self.model, self.train)["train"]


def min_chars(batch_size: int, seq_len: int) -> int:
    """The fewest training characters that give one window per stream (see batches.py)."""
    return batch_size * (seq_len + 1)


def check_data(
    ids: np.ndarray, cfg: TrainConfig, world: int = 1, distinct: int | None = None
) -> None:
    """Refuse a corpus too small for the options, saying what would fit. `distinct` (how many
    ids occur, known from the encoding) spares a pass over the ids."""
    import numpy as np

    if len(ids) == 0:
        raise UsageError("the corpus is empty")
    if (len(np.unique(ids)) if distinct is None else distinct) < 2:
        raise UsageError("the corpus has fewer than 2 distinct characters: nothing to learn")
    train_ids, _ = split(ids, cfg.val_fraction)
    need = min_chars(cfg.batch_size * world, cfg.seq_len)
    if len(train_ids) < need:
        raise UsageError(
            f"the corpus has {len(train_ids)} training characters but --batch-size "
            f"{cfg.batch_size} x (--seq-len {cfg.seq_len} + 1)"
            + (f" x {world} processes" if world > 1 else "")
            + f" needs {need}: shrink --batch-size or --seq-len, or use a larger corpus"
        )


def limit_reached(name: str, step: int, epoch: int, tcfg: TrainConfig, per_run: int) -> UsageError:
    """A resume with nothing left to do: which limit (stored with the run unless given again)
    ends it, and how to lift that one. The epoch is counted as progress shows it."""
    where = f"run {name!r} already reached step {step} (epoch {epoch + 1})"
    if tcfg.max_steps is not None and tcfg.max_steps <= per_run:
        return UsageError(
            f"{where}: its --max-steps {tcfg.max_steps} ends it; continue it with a larger "
            f"--max-steps, e.g. `charrnn train --run {name} --resume --max-steps "
            f"{2 * tcfg.max_steps}` (limits are stored with the run and count from its start)"
        )
    return UsageError(
        f"{where}: its --epochs {tcfg.epochs} ({per_run} steps) ends it; continue it with a "
        "larger --epochs (limits are stored with the run and count from its start)"
    )
