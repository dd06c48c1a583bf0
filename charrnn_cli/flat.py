"""One buffer for a model's parameters and one for their gradients, for training on the CPU.

A default CPU step (LSTM 2x128, 32 x 32) spent ~7% of its time on per-tensor work around the
recurrent kernels: the clip's norm of each of 13 gradients, Adam's grouping and looping over
them, zeroing them one by one. With every parameter a view into one buffer, and every gradient
a view into another, the clip is one norm and one multiply, the optimizer one fused call per
group and zeroing one fill (the figures are in docs/benchmarks.md, "Profile").

    data: [ group 0: p0 | p1 | ... ][ group 1: ... ]   one (N,) tensor; model params view it
    grad: [ same layout             ][ ...          ]   autograd adds into the views in place

`FlatOptimizer` steps one flat tensor per group, but its `state_dict` is the per-parameter one
torch's optimizer over the model's own parameters writes, so checkpoints keep their format:
a run trained flat resumes unflat (on a GPU, data-parallel) and the other way round.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


class Flat:
    """A model's parameters, moved into one buffer (`data`) with their gradients in another."""

    def __init__(self, groups: list[list[nn.Parameter]]) -> None:
        params = [p for group in groups for p in group]
        first = params[0]
        total = sum(p.numel() for p in params)
        self.data = torch.empty(total, dtype=first.dtype, device=first.device)  # (N,)
        self.grad = torch.zeros_like(self.data)  # (N,)
        self.params = params
        self.spans: list[tuple[int, int]] = []  # each parameter's [start, end) in the buffers
        self.groups: list[nn.Parameter] = []  # each group's slice, as one parameter
        at = 0
        for group in groups:
            begin = at
            for p in group:
                end = at + p.numel()
                self.data[at:end].copy_(p.detach().reshape(-1))
                with torch.no_grad():
                    p.data = self.data[at:end].view_as(p)
                p.grad = self.grad[at:end].view_as(p)
                self.spans.append((at, end))
                at = end
            flat = nn.Parameter(self.data[begin:at])
            flat.grad = self.grad[begin:at]
            self.groups.append(flat)

    def zero_grad(self) -> None:
        self.grad.zero_()

    def clip_(self, max_norm: float) -> torch.Tensor:
        """`clip_grad_norm_`'s arithmetic on the one gradient tensor: scale it to at most
        `max_norm` (inf: leave it); returns the norm before clipping."""
        norm = torch.linalg.vector_norm(self.grad, 2.0)
        if not math.isinf(max_norm):
            # as torch's clip: the coefficient, capped at 1, always applied (no sync to test it)
            coef = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
            self.grad.mul_(coef)
        return norm

    def owns_grads(self) -> bool:
        """Whether every parameter's gradient is still a view of `grad` (autograd adds in
        place; something that set a `.grad` to None or a new tensor would break that)."""
        base = self.grad.untyped_storage().data_ptr()
        return all(
            p.grad is not None and p.grad.untyped_storage().data_ptr() == base for p in self.params
        )


class FlatOptimizer:
    """`cls` (Adam, AdamW) over a `Flat`'s group tensors, with the per-parameter state_dict."""

    def __init__(
        self,
        flat: Flat,
        cls: type[torch.optim.Optimizer],
        groups: list[dict[str, Any]],
        **defaults: Any,
    ) -> None:
        self.flat = flat
        settings = [{k: v for k, v in g.items() if k != "params"} for g in groups]
        self.sizes = [len(g["params"]) for g in groups]  # parameters per group, in order
        inner = [{**s, "params": [p]} for s, p in zip(settings, flat.groups, strict=True)]
        self.inner = cls(inner, **defaults)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.inner.param_groups

    def step(self) -> None:
        self.inner.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero the one gradient buffer; never None, as the parameters' views must stay."""
        self.flat.zero_grad()

    def _indices(self) -> list[list[int]]:
        """The per-parameter indices of each group, as torch numbers them in a state_dict."""
        out, at = [], 0
        for n in self.sizes:
            out.append(list(range(at, at + n)))
            at += n
        return out

    def state_dict(self) -> dict[str, Any]:
        """What torch's optimizer over the model's own parameters would save."""
        inner = self.inner.state_dict()
        state: dict[int, dict[str, Any]] = {}
        groups = []
        for g, (saved, indices) in enumerate(
            zip(inner["param_groups"], self._indices(), strict=True)
        ):
            groups.append({**saved, "params": indices})
            flat_state = inner["state"].get(g)
            if not flat_state:
                continue
            begin, size = self.flat.spans[indices[0]][0], self.flat.groups[g].shape
            for i in indices:
                start, end = self.flat.spans[i]
                shape = self.flat.params[i].shape
                one: dict[str, Any] = {}
                for key, value in flat_state.items():
                    if torch.is_tensor(value) and value.shape == size:  # per element: split
                        value = value[start - begin : end - begin].view(shape)
                    one[key] = value.clone() if torch.is_tensor(value) else value
                state[i] = one
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, data: dict[str, Any]) -> None:
        """Take a per-parameter state_dict (this class's, or torch's optimizer's)."""
        saved_groups = data["param_groups"]
        if len(saved_groups) != len(self.sizes) or any(
            len(g["params"]) != n for g, n in zip(saved_groups, self.sizes, strict=True)
        ):
            raise ValueError("the optimizer state has other parameter groups than this model")
        state = {}
        for g, saved in enumerate(saved_groups):
            per = [data["state"].get(old) for old in saved["params"]]
            if not any(per):
                continue
            if not all(per):
                raise ValueError("the optimizer state covers only some of a group's parameters")
            merged: dict[str, Any] = {}
            for key, first in per[0].items():
                if torch.is_tensor(first) and first.dim() > 0:
                    merged[key] = torch.cat([one[key].reshape(-1) for one in per])
                else:  # a copy: the caller's state must not step with this one
                    merged[key] = first.clone() if torch.is_tensor(first) else first
            state[g] = merged
        groups = [{**g, "params": [i]} for i, g in enumerate(saved_groups)]
        self.inner.load_state_dict({"state": state, "param_groups": groups})
