"""Setting up a training job: the corpus, the run's name and folder, and the configs.

A new run merges defaults, preset and the options given; a resumed run takes its stored
config and corpus and refuses any change that would make it a different run (another corpus
or vocabulary, another model or optimisation option). Everything a user can get wrong is
checked here, before anything is written. A fine-tuned run (`--init-from`) takes its model's
shape from its parent and a vocabulary that extends the parent's (lineage.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from charrnn_cli import config, corpora
from charrnn_cli.data import encode
from charrnn_cli.errors import CharrnnError, UsageError
from charrnn_cli.storage import store
from charrnn_cli.training import lineage
from charrnn_cli.training.job import CorpusInfo, Job, check_data

if TYPE_CHECKING:  # distributed.py is the torch layer: a run is prepared without it
    from charrnn_cli.training.distributed import Comm


def prepare(
    corpus_spec: str | None,
    run: str | None,
    resume: bool,
    preset: str | None,
    given: dict[str, Any],
    comm: Comm,
    progress: encode.Progress | None = None,
    init_from: str | None = None,
) -> Job:
    """The Job to train, or a CharrnnError saying what to change; `progress(done, total)`
    hears about the bytes of a corpus being encoded."""
    if corpus_spec == "-" and comm.active:
        raise UsageError(
            "--corpus - cannot be shared by several processes: import it first "
            "with `charrnn fetch --from - --name NAME` and train on NAME"
        )
    if resume:
        return _resumed(corpus_spec, run, preset, given, init_from, progress)
    parent = lineage.plan(init_from) if init_from else None
    if parent is not None:
        given = lineage.shaped(parent, given)
    model_cfg, train_cfg = config.build(given, preset)
    cf = corpora.resolve(corpus_spec or corpora.DEFAULT)
    data = encode.load(cf.path, cf.sha256, model_cfg.vocab, progress)
    if parent is not None:  # a byte run's vocabulary is whole already: nothing is added
        data = lineage.remap(data, lineage.merge_vocab(parent.vocab, data.vocab), progress)
    auto = None
    if preset == "auto":  # sized for the corpus, the budget and this device (autosize.py)
        from charrnn_cli.training import autosize

        chosen = comm.broadcast_object(autosize.configure(given, data, train_cfg))
        model_cfg, train_cfg, auto = config.build(chosen["options"]) + (chosen["auto"],)
    check_data(data.ids, train_cfg, comm.world, data.distinct)
    name = store.check_name(run) if run else store.new_name(cf.name, model_cfg.cell)
    name = str(comm.broadcast_object(name))
    if run and comm.is_main and (store.run_dir(name) / store.CONFIG).exists():
        raise CharrnnError(
            f"run {name!r} already exists: continue it with --resume, pick another --run, "
            f"or remove it with `charrnn runs rm {name}`"
        )
    model_cfg.vocab_size = len(data.vocab)
    check_fits(model_cfg)
    corpus = CorpusInfo.of(cf)
    record = lineage.record(parent, data.vocab) if parent is not None else None
    job = Job(name, model_cfg, train_cfg, data, corpus, preset=preset or "tutorial")
    job.parent = record
    job.auto = auto
    return job


def check_fits(model_cfg: config.ModelConfig) -> None:
    """Refuse a model whose weights and Adam's two moments (fp32) alone exceed this machine's
    memory, before anything is allocated or written: a UsageError, not the OOM killer."""
    import os

    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX: let the allocator tell
        return
    from charrnn_cli.model import parameter_count

    params = parameter_count(model_cfg)
    need = params * 4 * 3
    if need > ram:
        raise UsageError(
            f"--hidden-size {model_cfg.hidden_size} x --layers {model_cfg.layers} is "
            f"{params:,} parameters: training needs at least {need / 2**30:,.0f} GiB, more than "
            f"this machine's {ram / 2**30:,.0f} GiB of memory; use a smaller --hidden-size, "
            "--layers or --embed-size"
        )


def _resumed(
    corpus_spec: str | None,
    run: str | None,
    preset: str | None,
    given: dict,
    init_from: str | None,
    progress: encode.Progress | None = None,
) -> Job:
    if not run:
        raise UsageError("--resume needs --run NAME (`charrnn runs` lists them)")
    name = store.check_name(run)
    folder = store.run_dir(name)
    if not (folder / store.CONFIG).exists():
        raise CharrnnError(f"cannot resume {name!r}: no such run (`charrnn runs` lists them)")
    if not (folder / "last.pt").exists():
        raise CharrnnError(
            f"cannot resume {name!r}: it has no checkpoint yet; train it anew after "
            f"`charrnn runs rm {name}`"
        )
    stored = store.read_config(name)
    _same_parent(stored, init_from)
    stored_preset = stored.get("preset", "tutorial")
    if preset is not None and preset != stored_preset:
        raise UsageError(f"--preset {preset} differs from the run's stored preset {stored_preset}")
    model_cfg, train_cfg = config.merge_resume(*config.from_dict(stored), given)
    want = stored.get("corpus", {})
    if corpus_spec is not None:
        cf = corpora.resolve(corpus_spec)
        if cf.sha256 != want.get("sha256"):
            raise UsageError(
                f"--corpus {corpus_spec} is not the text this run was trained on "
                f"({want.get('name')}, sha256 {str(want.get('sha256'))[:12]}...): "
                "resume without --corpus, or start a new --run"
            )
    else:
        cf = corpora.stored(want)
    data = encode.load(cf.path, cf.sha256, model_cfg.vocab, progress)
    if stored.get("parent"):  # a fine-tuned run's vocabulary extends its corpus's
        data = lineage.remap(data, str(stored.get("vocab")), progress)
    if data.vocab != stored.get("vocab"):
        raise UsageError("the corpus's vocabulary differs from the run's: start a new --run")
    corpus = CorpusInfo.of(cf)
    job = Job(name, model_cfg, train_cfg, data, corpus, resume=True, preset=stored_preset)
    job.precision_fallback = given.get("precision") is None
    return job


def _same_parent(stored: dict[str, Any], init_from: str | None) -> None:
    """--init-from on --resume may only name the parent the run was fine-tuned from."""
    if init_from is None:
        return
    was = (stored.get("parent") or {}).get("run")
    if lineage.parse(init_from)[0] != was:
        whence = f"was fine-tuned from {was!r}" if was else "was trained from scratch"
        raise UsageError(
            f"--init-from {init_from}: run {stored.get('name')!r} {whence}; --resume "
            "continues it as it began (drop --init-from)"
        )
