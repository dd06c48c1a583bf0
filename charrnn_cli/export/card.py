"""The model card: an exported folder's README.md, in the Hugging Face convention.

YAML front matter first (`library_name: charrnn`, tags, `pipeline_tag`, the corpus and its
sha256, `base_model` for a fine-tuned run, the held-out bits per character as `model-index`
results), then how the model was trained, a short sample, and how to use it: with charrnn,
with the Python API, and in plain torch. Torch-free: it formats the folder's config.json.
"""

from __future__ import annotations

import re
from typing import Any

from charrnn_cli.console import json_text, visible

PLAIN_TORCH = """\
import json, torch
from safetensors.torch import load_file

cfg = json.load(open("config.json"))
w = load_file("model.safetensors")
V, E, H, L = len(cfg["vocab"]), cfg["embed_size"], cfg["hidden_size"], cfg["layers"]
embed = torch.nn.Embedding(V, E)
rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cfg["cell"]](
    E, H, L, batch_first=True)
head = torch.nn.Linear(H, V)
embed.weight.data = w["embed.weight"]
head.weight.data, head.bias.data = w.get("head.weight", w["embed.weight"]), w["head.bias"]
rnn.load_state_dict({k[4:]: v for k, v in w.items() if k.startswith("rnn.")})
start = w.get("start")  # (parts, layers, 1, hidden): h (and c for an LSTM); absent: zeros
state = None if start is None else (start[0], start[1]) if cfg["cell"] == "lstm" else start[0]
idx, text = {c: i for i, c in enumerate(cfg["vocab"])}, "ROMEO:"
with torch.no_grad():
    y, state = rnn(embed(torch.tensor([[idx[c] for c in text]])), state)
    for _ in range(200):  # greedy: the likeliest character each step
        text += cfg["vocab"][int(head(y[0, -1]).argmax())]
        y, state = rnn(embed(torch.tensor([[idx[text[-1]]]])), state)
print(text)
"""


def _q(value: Any) -> str:
    """A YAML scalar: JSON's quoting is YAML's double-quoted style (controls, separators and
    lone surrogates as \\u escapes, which YAML reads the same)."""
    return json_text(value)


def _md(text: str) -> str:
    """Text for a Markdown line: controls shown (console.visible), every ASCII punctuation
    character backslash-escaped (CommonMark), so a folder name stays a name."""
    return re.sub(r"([!-/:-@\[-`{-~])", r"\\\1", visible(text, keep=""))


def fence(text: str) -> str:
    """A code fence longer than any run of backticks in `text` (at least three)."""
    return "`" * max(3, 1 + max((len(run) for run in re.findall("`+", text)), default=0))


def front_matter(cfg: dict[str, Any], title: str) -> str:
    corpus = cfg.get("corpus") or {}
    lines = ["---", "library_name: charrnn", "tags:", "- char-rnn", f"- {cfg['cell']}"]
    lines += ["- text-generation", "pipeline_tag: text-generation"]
    if corpus.get("name"):
        lines += [f"datasets:\n- {_q(corpus['name'])}", f"corpus: {_q(corpus['name'])}"]
    if corpus.get("sha256"):
        lines.append(f"corpus_sha256: {_q(corpus['sha256'])}")
    parent = cfg.get("parent") or {}
    if parent.get("run"):
        lines.append(f"base_model: {_q(parent['run'])}")
    held = cfg.get("held_out")
    if held:
        lines += [
            "model-index:", f"- name: {_q(title)}", "  results:", "  - task:",
            "      type: text-generation", "    dataset:",
            f"      name: {_q((corpus.get('name') or 'corpus') + ' (held-out)')}",
            "      type: text", "    metrics:", "    - type: bits_per_char",
            f"      value: {held['bits_per_char']:.4f}", "      name: held-out bits per character",
            "    - type: loss", f"      value: {held['loss']:.4f}",
            "      name: held-out cross-entropy (nats per character)",
        ]  # fmt: skip
    return "\n".join([*lines, "---", ""])


def card(cfg: dict[str, Any], title: str, sample: str, parameters: int) -> str:
    """The README.md of an exported folder named `title`."""
    corpus = (cfg.get("corpus") or {}).get("name") or "an unnamed text"
    train = cfg.get("training") or {}
    held = cfg.get("held_out")
    vocab = "UTF-8 bytes (256)" if cfg["vocab"] == "bytes" else f"{len(cfg['vocab'])} characters"
    shape = f"{cfg['layers']}x{cfg['hidden_size']} {cfg['cell'].upper()}"
    trained = [
        f"- model: {shape}, embedding {cfg['embed_size']}, {parameters:,} parameters, "
        f"{vocab}, start state {cfg.get('start_state', 'zero')}",
        f"- corpus: {corpus}, {cfg.get('step') or 0:,} steps"
        + (f" (fine-tuned from `{cfg['parent']['run']}`)" if cfg.get("parent") else ""),
    ]
    if train:
        trained.append(
            f"- training: {train.get('optimizer', 'adam')} lr {train.get('lr')}, "
            f"batch {train.get('batch_size')} x {train.get('seq_len')} characters, "
            f"dropout {cfg.get('dropout', 0)}"
        )
    if held:
        trained.append(
            f"- held-out: {held['bits_per_char']:.4f} bits per character ({held['loss']:.4f} nats)"
        )
    sample = visible(sample)
    bar = fence(sample)
    return visible("\n".join([  # no control character raw, wherever a field put one
        front_matter(cfg, title), f"# {_md(title)}", "",
        f"A character-level {shape} language model trained with "
        "[charrnn](https://github.com/charrnn/charrnn). Its files: `model.safetensors` (the "
        "weights under their PyTorch names), `config.json` (shape, vocabulary, start state) and "
        "this card; nothing in this folder is pickled.", "",
        "## Training", "", *trained, "",
        "## A sample", "", f"{bar}text", sample, bar, "",
        "## Use it", "", "With charrnn (the folder is taken wherever a run is):", "", "```sh",
        "charrnn sample --run ./THIS_FOLDER --seed 'ROMEO:' --len 300",
        "charrnn eval --run ./THIS_FOLDER --corpus text.txt", "```", "",
        "With charrnn's Python API:", "", "```python", "import charrnn_cli as charrnn", "",
        'm = charrnn.load("./THIS_FOLDER")',
        'print(m.generate("ROMEO:", length=200, temperature=0.8, seed=1)[0])', "```", "",
        "In plain PyTorch (`pip install torch safetensors`), greedy from the start state:", "",
        "```python", PLAIN_TORCH.rstrip("\n"), "```", "",
    ]))  # fmt: skip
