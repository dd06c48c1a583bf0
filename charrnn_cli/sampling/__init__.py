"""sampling: making text with a trained model, behind one entry point.

Build a `SampleRequest` (request.py, torch-free), `load` a run and call `generate(model,
request)` (generator.py): the CLI, the Python API and the export checks all do just that. Below
it: `samples` (one text, `num` texts, beam search), `lines` (whole lines with filters),
`streams` (B streams in lockstep and where a fresh sample starts), `steppers` (the cell
equations in numpy for the CPU) and `strategy` (temperature, top-k/p and the noise that draws
the next character). Beside them, `during_training` draws the samples a run shows and keeps
as it trains, and `kept` reads and writes them (samples.jsonl, torch-free). Importing this
package does not import torch; `generate` and `load` do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from charrnn_cli.sampling.request import SampleRequest

if TYPE_CHECKING:
    from charrnn_cli.sampling.generator import Piece, Report, SamplingModel, generate, load

__all__ = ["Piece", "Report", "SampleRequest", "SamplingModel", "generate", "load"]


def __getattr__(name: str) -> Any:
    """The torch layer's names, imported when first used."""
    if name in __all__:
        from charrnn_cli.sampling import generator

        return getattr(generator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
