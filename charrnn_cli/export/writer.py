"""`export`: read a run (or an exported folder) and write it in one format, safely.

The output path is checked before anything is loaded, and again by the move itself
(outputs.py): one that exists is refused unless `force`, which replaces only what charrnn
wrote; a FIFO or a character device is written into as a stream. A folder is built beside its
final place under a temp name and moved into place (a kill leaves no half folder, and the next
write sweeps the temp); a file the same way. The run is only read.
"""

from __future__ import annotations

from pathlib import Path

from charrnn_cli import export
from charrnn_cli.errors import CharrnnError, UsageError
from charrnn_cli.export.folder import Source, config_of, gather, write_folder
from charrnn_cli.storage import outputs

CARD_SAMPLE = 300  # characters of the model card's sample
CARD_TEMPERATURE = 0.8


def check_output(output: Path, force: bool, fmt: str = "folder") -> outputs.Target:
    """How `output` may be written (outputs.check): a path that exists is refused unless
    `force`, which replaces only a file, an empty folder or an export of charrnn's own."""
    return outputs.check(output, force, folder=fmt == "folder")


def export_run(
    run: str | None, checkpoint: str, fmt: str, output: Path, force: bool = False
) -> Path:
    """Write `run` (its `checkpoint`) to `output` as `fmt` (folder, onnx or html)."""
    if fmt not in export.FORMATS:
        raise UsageError(f"--format must be one of {', '.join(export.FORMATS)}")
    check_output(output, force, fmt)
    return write(gather(run, checkpoint), fmt, output, force)


def write(src: Source, fmt: str, output: Path, force: bool = False) -> Path:
    """Write a gathered model to `output` as `fmt`; the output is checked again, and at the
    moment of the move (outputs.place)."""
    target = check_output(output, force, fmt)
    if fmt == "folder":
        from charrnn_cli.export.card import card

        text = card(config_of(src), _title(src), _sample(src), src.model.num_parameters())
        with outputs.new_folder(target) as tmp:
            write_folder(src, tmp, text)
        return output
    if fmt == "onnx":
        from charrnn_cli.export.onnx import onnx_bytes

        data = onnx_bytes(src)
    else:
        from charrnn_cli.export.page import page_html

        data = page_html(src).encode("utf-8")
    outputs.write_bytes(target, data)
    return output


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
