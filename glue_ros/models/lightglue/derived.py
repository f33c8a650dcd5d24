"""Weights derived from parameters (folded projections), cached until a parameter changes."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn


def params_key(params: Sequence[torch.Tensor]) -> tuple:
    """Identity, storage, type and in-place version of tensors: changes when one changes."""
    return tuple(
        (id(p), p.data_ptr(), p.dtype, -1 if p.is_inference() else p._version) for p in params
    )


def derived_weights(
    owner: nn.Module, tag: str, params: Sequence[torch.Tensor], build: Callable[[], tuple]
) -> tuple:
    """Return ``build()``, cached on ``owner`` until one of ``params`` changes.

    While autograd records (training), the weights are rebuilt on every call so that gradients
    reach the parameters; so they are for parameters created under ``torch.inference_mode``,
    which have no version counter to tell a change.
    """
    if (torch.is_grad_enabled() and any(p.requires_grad for p in params)) or any(
        p.is_inference() for p in params
    ):
        return build()
    key = params_key(params)
    cache = owner.__dict__.setdefault('_derived_cache', {})
    hit = cache.get(tag)
    if hit is not None and hit[0] == key:
        return hit[1]
    with torch.inference_mode(False), torch.no_grad():
        value = build()
    cache[tag] = (key, value)
    return value
