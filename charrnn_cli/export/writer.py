"""`export`: read a run (or an exported folder) and write it in one format, safely.

The output path is checked before anything is loaded: one that exists is refused unless
`force`. A folder is built beside its final place under a temp name and renamed into place (a
kill leaves no half folder); a file is written by paths.py's atomic writer. The run is only
read.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from charrnn_cli import export
from charrnn_cli.errors import CharrnnError, UsageError
from charrnn_cli.export.folder import Source, config_of, gather, write_folder
from charrnn_cli.runs import paths

CARD_SAMPLE = 300  # characters of the model card's sample
CARD_TEMPERATURE = 0.8


def check_output(output: Path, force: bool) -> None:
    """Refuse an output path that exists (unless `force`), or whose folder does not. `force`
    replaces a file, an empty folder or an exported one, never any other folder (a typo must
    not remove a folder of the user's)."""
    try:
        exists, parent = output.exists(), output.parent.is_dir()
        replaceable = not output.is_dir() or export.holds_export(output)
        replaceable = replaceable or not any(output.iterdir())
    except (OSError, ValueError) as exc:
        raise UsageError(f"--output {output}: {getattr(exc, 'strerror', None) or exc}") from None
    if output.name in ("", ".", ".."):
        raise UsageError(f"--output {str(output)!r} names no file or folder to write")
    if exists and not force:
        raise UsageError(f"{output} exists: pass --force to replace it, or pick another --output")
    if exists and not replaceable:
        raise UsageError(
            f"{output} is a folder that holds no exported model: --force replaces only files, "
            "empty folders and exported folders; remove it yourself or pick another --output"
        )
    if not parent:
        raise UsageError(f"{output.parent} is not a folder: make it first")


def export_run(
    run: str | None, checkpoint: str, fmt: str, output: Path, force: bool = False
) -> Path:
    """Write `run` (its `checkpoint`) to `output` as `fmt` (folder, onnx or html)."""
    if fmt not in export.FORMATS:
        raise UsageError(f"--format must be one of {', '.join(export.FORMATS)}")
    check_output(output, force)
    return write(gather(run, checkpoint), fmt, output, force)


def write(src: Source, fmt: str, output: Path, force: bool = False) -> Path:
    """Write a gathered model to `output` as `fmt`."""
    check_output(output, force)
    if fmt == "folder":
        _folder(src, output)
        return output
    if fmt == "onnx":
        from charrnn_cli.export.onnx import onnx_bytes

        data = onnx_bytes(src)
    else:
        from charrnn_cli.export.page import page_html

        data = page_html(src).encode("utf-8")
    if output.is_dir():
        shutil.rmtree(output)
    paths.atomic_write_bytes(output, data)
    return output


def _folder(src: Source, output: Path) -> None:
    from charrnn_cli.export.card import card

    tmp = paths.temp_path(output)
    with paths.storage_errors(output):
        tmp.mkdir()
        try:
            text = card(config_of(src), _title(src), _sample(src), src.model.num_parameters())
            write_folder(src, tmp, text)
            old = paths.temp_path(output) if output.exists() else None
            if old is not None:
                output.rename(old)
            paths.move_into_place(tmp, output)
            if old is not None:
                shutil.rmtree(old) if old.is_dir() else old.unlink()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _title(src: Source) -> str:
    return Path(src.name).name if export.is_folder(src.name) else src.name


def _sample(src: Source) -> str:
    """A short sample for the card: no prompt, temperature 0.8, random seed 0."""
    from charrnn_cli.sampling.generator import SamplingModel, generate
    from charrnn_cli.sampling.request import SampleRequest

    sm = SamplingModel(src.model, src.vocab, src.kind, src.ck.get("unigram"), None, src.name)
    request = SampleRequest(length=CARD_SAMPLE, temperature=CARD_TEMPERATURE, random_seed=0)
    try:
        return "".join(p.text for p in generate(sm, request))
    except CharrnnError:
        return ""
