"""export: a trained model in forms that go anywhere.

The folder (folder.py) is `model.safetensors` (the state dict under the model's own names),
`config.json` (the shape, the vocabulary, the start state, versions) and a model card
`README.md` (card.py); `onnx.py` writes one ONNX graph, `page.py` one HTML page that samples in
plain JavaScript; writer.py puts any of them in place. Reading a folder back as a run is
storage/exported.py's (torch-free) and storage/folder.py's, which the checkpoint loader shares.
"""

from __future__ import annotations

from charrnn_cli.storage.exported import (
    CARD,
    CONFIG,
    FORMAT,
    FORMATS,
    SHAPE,
    TENSORS,
    holds_export,
    is_folder,
    model_section,
    read_config,
    run_config,
    vocab_text,
)

__all__ = [
    "CARD",
    "CONFIG",
    "FORMAT",
    "FORMATS",
    "SHAPE",
    "TENSORS",
    "holds_export",
    "is_folder",
    "model_section",
    "read_config",
    "run_config",
    "vocab_text",
]
