"""`export --format html`: one page that samples in the browser, in plain JavaScript.

The page holds everything: the weights (float32, base64) and shape in a JSON script element, the
sampler (sampler.js, which node runs too: the benchmark and the tests), and a small form (seed,
temperature, top-k, length, random seed, Generate) that shows the text as it is drawn. No
library, no network. `#seed=...&len=N&temperature=T&random_seed=S` in the address generates on
load into the element with id `output`. The first layer's input projection of every character is
shipped as one table (embedding x W_ih, biases folded in, computed here in float32 as the numpy
sampler computes it); greedy text is `charrnn sample --greedy`'s, a seed with characters outside
the BMP included (the sampler walks code points, not UTF-16 units). The template's markers are
filled in one pass, so a name holding a marker stays text; the model's JSON holds no `<`.
"""

from __future__ import annotations

import base64
import html
import json
import re
from importlib import resources
from typing import Any

import numpy as np

from charrnn_cli import export
from charrnn_cli.console import visible
from charrnn_cli.errors import UsageError
from charrnn_cli.export.folder import Source

MAX_PARAMETERS = 20_000_000  # 80 MB of float32, 107 MB of base64: past what a page should hold
DEFAULT_SEED = "ROMEO:"
MARKER = re.compile(r"__(TITLE|ABOUT|SEED|MODEL_JSON|SAMPLER_JS)__")


def page_tensors(src: Source) -> dict[str, np.ndarray]:
    """What sampler.js reads: the first layer's table, each layer's weights and biases, the
    head and the start state, float32."""
    sd = {k: v.detach().float().cpu().numpy() for k, v in src.model.state_dict().items()}
    cfg, gru = src.model.cfg, src.model.cfg.cell == "gru"
    out = {}
    for layer in range(cfg.layers):
        b_in = sd[f"rnn.bias_ih_l{layer}"] + (0 if gru else sd[f"rnn.bias_hh_l{layer}"])
        if layer == 0:
            out["table"] = sd["embed.weight"] @ sd["rnn.weight_ih_l0"].T + b_in
        else:
            out[f"wih{layer}"], out[f"bih{layer}"] = sd[f"rnn.weight_ih_l{layer}"], b_in
        out[f"whh{layer}"] = sd[f"rnn.weight_hh_l{layer}"]
        if gru:
            out[f"bhh{layer}"] = sd[f"rnn.bias_hh_l{layer}"]
    out["wout"], out["bout"] = sd["head.weight"], sd["head.bias"]
    if "start" in sd:
        out["start"] = sd["start"]
    return {k: np.ascontiguousarray(v, dtype="<f4") for k, v in out.items()}


def model_spec(src: Source) -> dict[str, Any]:
    """The page's model: shape, vocabulary, counts, and the tensors as one base64 float32
    buffer with each one's (offset, length) in floats."""
    if src.kind == "bytes":
        raise UsageError(
            "--format html needs a run of characters; this run reads bytes (--vocab bytes): "
            "export a folder or ONNX instead"
        )
    if src.model.num_parameters() > MAX_PARAMETERS:
        raise UsageError(
            f"--format html holds at most {MAX_PARAMETERS:,} parameters in one page; this "
            f"model has {src.model.num_parameters():,}: export a folder or ONNX instead"
        )
    tensors, offsets, at = page_tensors(src), {}, 0
    for name, array in tensors.items():
        offsets[name] = [at, array.size]
        at += array.size
    blob = b"".join(a.tobytes() for a in tensors.values())
    cfg = src.model.cfg
    return {
        "format": export.FORMAT, "cell": cfg.cell, "layers": cfg.layers,
        "hidden_size": cfg.hidden_size, "vocab": list(src.vocab), "unigram": src.ck.get("unigram"),
        "tensors": offsets, "weights": base64.b64encode(blob).decode("ascii"),
    }  # fmt: skip


def sampler_js() -> str:
    return resources.files("charrnn_cli.export").joinpath("sampler.js").read_text("utf-8")


def page_html(src: Source) -> str:
    """The whole page."""
    spec = json.dumps(model_spec(src), ensure_ascii=True, separators=(",", ":"))
    spec = spec.replace("<", "\\u003c").replace(">", "\\u003e")  # no </script>, no <!--
    cfg = src.model.cfg
    title = src.name.rstrip("/").rsplit("/", 1)[-1] or "model"
    about = (
        f"A character-level {cfg.layers}x{cfg.hidden_size} {cfg.cell.upper()} "
        f"({src.model.num_parameters():,} parameters, {len(src.vocab)} characters) trained "
        "with charrnn."
    )
    seed = DEFAULT_SEED if all(c in src.vocab for c in DEFAULT_SEED) else ""
    template = resources.files("charrnn_cli.export").joinpath("page.html").read_text("utf-8")
    parts = {
        "TITLE": html.escape(visible(title, keep="")), "ABOUT": html.escape(about),
        "SEED": html.escape(seed), "MODEL_JSON": spec, "SAMPLER_JS": sampler_js(),
    }  # fmt: skip
    # one pass: a marker inside a value (a folder named x__SAMPLER_JS__) is never filled again
    return MARKER.sub(lambda m: parts[m.group(1)], template)
