"""LightGlue sparse feature matcher with adaptive depth (early exit) and width (point pruning).

Lindenberger, Sarlin, Pollefeys: "LightGlue: Local Feature Matching at Light Speed", ICCV 2023.
Written from the paper and from the tensor names and shapes of the official checkpoints.
This file is the network's forward pass and its adaptive control (when to exit, which points
to prune) in one place, read top to bottom; the blocks it stacks live beside it.

Built for fast CPU inference on one image pair (the attention blocks: ``attention.py``):

* the rotary encoding is computed once per pair;
* token confidences and matchabilities are computed only after layers that decide on an early
  exit or on pruning, in one projection when both are needed;
* the dual-softmax assignment reduces along contiguous rows only, and switches to a blocked,
  memory-bounded evaluation above a size (``assignment.py``).

Derived (folded) weights are cached and rebuilt whenever a parameter changes (``derived.py``).
The static-shape variant for ONNX / TensorRT and its export live in ``export.py``, which
builds on this module (this one does not know about it).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from glue_ros.core.errors import WeightsError
from glue_ros.core.weights import load_checkpoint, load_into, packaged_weights
from glue_ros.models.lightglue.assignment import assign_matches
from glue_ros.models.lightglue.attention import AttentionBlock, GlueLayer, RotaryEncoding
from glue_ros.models.lightglue.checkpoint import canonical_state, infer_conf
from glue_ros.models.lightglue.derived import derived_weights, params_key
from glue_ros.models.lightglue.heads import AssignmentHead, ConfidenceHead

Size = Sequence[float] | torch.Tensor


def normalize_keypoints(kpts: torch.Tensor, size: Size) -> torch.Tensor:
    """Map pixel coordinates to about [-1, 1]: ``(k - size / 2) / (max(size) / 2)``.

    ``size`` is ``(width, height)``.
    """
    if isinstance(size, torch.Tensor):
        size = size.reshape(-1).tolist()
    width, height = float(size[0]), float(size[1])
    scale = 2.0 / max(width, height)
    shift = kpts.new_tensor([width / 2, height / 2])
    return (kpts - shift) * scale


class LightGlue(nn.Module):
    """LightGlue matcher of one image pair, with early exit and point pruning.

    ``forward(kpts0, desc0, size0, kpts1, desc1, size1)`` returns a dict with

    * ``matches`` (M, 2) int64 index pairs into the keypoints of image 0 and image 1,
    * ``scores`` (M,) match probabilities,
    * ``matches0`` (N0,) / ``matches1`` (N1,) index of the match or -1, and
      ``matching_scores0`` / ``matching_scores1`` (0 for points without a mutual match),
    * ``layers_used`` (layers run, <= ``layers_total``), ``layers_total`` (``n_layers``),
    * ``pruned``: ``(points left in image 0, points left in image 1)`` when the assignment ran.

    Early exit (``depth_confidence``): after every layer but the last, each remaining point gets
    a confidence; when the share of confident points (over all the points of the pair, pruned
    points counting as confident) exceeds ``depth_confidence``, the layers stop.
    Point pruning (``width_confidence``): after every layer but the last, points whose
    matchability is below ``1 - width_confidence`` leave the pair, unless their confidence is low
    (when early exit is on; otherwise the confidence is not computed and only the matchability
    decides, as in the reference implementation).
    """

    default_conf = {
        'input_dim': 256,  # descriptor dimension of the extractor
        'descriptor_dim': 256,  # width of the transformer (input_proj maps input_dim to it)
        'n_layers': 9,  # number of self+cross attention layers
        'num_heads': 4,  # attention heads (descriptor_dim / num_heads must be even)
        'add_scale_ori': False,  # encode (scale, orientation) with the position (SIFT)
        'depth_confidence': 0.95,  # early exit when this share of points is confident; -1: off
        'width_confidence': 0.99,  # prune points with matchability < 1 - this; -1: off
        'filter_threshold': 0.1,  # minimum match probability
        'mp': False,  # float16 autocast on CUDA (never used on the CPU)
        # CPU only: attention products in bfloat16 (about 1.5x faster matching on CPUs with
        # native bf16, e.g. AVX512-BF16/AMX; slightly different matches), the rest in fp32.
        'cpu_bf16_attention': False,
        'assignment_block_elements': 2**23,  # N*M above which the assignment runs blocked
    }
    # Pruning has a gather cost, so an image is pruned only when it has more points than this;
    # -1: always. GPUs only gain from it for large point counts.
    prune_min_points = {'cpu': -1, 'mps': -1, 'cuda': 1024}
    # Preset weights and configuration per extractor; None: the user supplies the weights.
    presets = {
        'xfeat': (
            'xfeat_lightglue',
            {'input_dim': 64, 'descriptor_dim': 96, 'n_layers': 6, 'num_heads': 1},
        ),
        'disk': (
            'disk_lightglue',
            {'input_dim': 128, 'descriptor_dim': 256, 'n_layers': 9, 'num_heads': 4},
        ),
        'superpoint': (
            None,
            {'input_dim': 256, 'descriptor_dim': 256, 'n_layers': 9, 'num_heads': 4},
        ),
    }

    def __init__(self, **conf):
        super().__init__()
        unknown = sorted(set(conf) - set(self.default_conf))
        if unknown:
            raise TypeError(f'unknown LightGlue option(s): {", ".join(unknown)}')
        self.conf = conf = {**self.default_conf, **conf}
        dim, heads, n_layers = conf['descriptor_dim'], conf['num_heads'], conf['n_layers']
        if n_layers < 1:
            raise ValueError('n_layers must be at least 1')
        self.input_proj = (
            nn.Linear(conf['input_dim'], dim) if conf['input_dim'] != dim else nn.Identity()
        )
        self.posenc = RotaryEncoding(4 if conf['add_scale_ori'] else 2, dim // heads)
        self.transformers = nn.ModuleList(GlueLayer(dim, heads) for _ in range(n_layers))
        for block in self.modules():
            if isinstance(block, AttentionBlock):
                block.bf16 = bool(conf['cpu_bf16_attention'])
        self.log_assignment = nn.ModuleList(AssignmentHead(dim) for _ in range(n_layers))
        self.token_confidence = nn.ModuleList(ConfidenceHead(dim) for _ in range(n_layers - 1))
        # Confidence a point needs after layer i to count as confident (decreases with depth).
        self.confidence_thresholds = [
            min(max(0.8 + 0.1 * math.exp(-4.0 * i / n_layers), 0.0), 1.0) for i in range(n_layers)
        ]

    # ----------------------------------------------------------------------------- loading
    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **conf) -> LightGlue:
        """Build a LightGlue from an official checkpoint file, in eval mode.

        Both layer namings (``transformers.N.self_attn`` and ``self_attn.N``) are read, with or
        without a ``matcher.`` prefix. ``input_dim``, ``descriptor_dim``, ``n_layers``,
        ``num_heads`` and ``add_scale_ori`` come from the tensor shapes unless given in
        ``conf``. Raises :class:`WeightsError` for an unreadable file or one that does not fit.
        """
        state = canonical_state(load_checkpoint(path))
        model = cls(**{**infer_conf(state), **conf})
        load_into(model, state, source=str(path))
        return model.eval()

    @classmethod
    def for_features(
        cls, features: str, weights: str | os.PathLike | None = None, **conf
    ) -> LightGlue:
        """Build the LightGlue that matches ``'xfeat'``, ``'disk'`` or ``'superpoint'`` features.

        ``weights`` defaults to the packaged checkpoint (xfeat, disk); SuperPoint weights are not
        packaged and must be given, otherwise :class:`WeightsError` is raised.
        """
        if features not in cls.presets:
            raise ValueError(
                f'no LightGlue preset for {features!r}; known: {", ".join(sorted(cls.presets))}'
            )
        packaged, preset = cls.presets[features]
        if weights is None:
            if packaged is None:
                raise WeightsError(
                    f'LightGlue weights for {features!r} are not packaged; pass '
                    f'the checkpoint file, e.g. {features}_lightglue.pth'
                )
            weights = packaged_weights(packaged)
        return cls.from_checkpoint(weights, **{**preset, **conf})

    def _apply(self, fn: Callable, *args: Any, **kwargs: Any) -> LightGlue:
        for module in self.modules():
            module.__dict__.pop('_derived_cache', None)
        return super()._apply(fn, *args, **kwargs)

    # ----------------------------------------------------------------------------- helpers
    @property
    def early_exit_enabled(self) -> bool:
        """Whether ``depth_confidence`` enables early exit."""
        return self.conf['depth_confidence'] > 0

    @property
    def pruning_enabled(self) -> bool:
        """Whether ``width_confidence`` enables point pruning."""
        return self.conf['width_confidence'] > 0

    def _decision_scores(
        self, layer: int, x: torch.Tensor, need_confidence: bool, need_matchability: bool
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Token confidence and matchability probability ``(T,)`` after ``layer``.

        Only what is needed is computed; when both are, in one two-output projection.
        """
        token = self.token_confidence[layer].token[0]
        match = self.log_assignment[layer].matchability
        if need_confidence and need_matchability:
            weight, bias = derived_weights(
                self.token_confidence[layer],
                'decision',
                [token.weight, token.bias, match.weight, match.bias],
                lambda: (
                    torch.cat([token.weight, match.weight], 0),
                    torch.cat([token.bias, match.bias], 0),
                ),
            )
            probs = torch.sigmoid(F.linear(x, weight, bias))
            return probs[:, 0], probs[:, 1]
        if need_confidence:
            return torch.sigmoid(token(x)).squeeze(-1), None
        return None, torch.sigmoid(match(x)).squeeze(-1)

    def _exit_now(self, confidence: torch.Tensor, layer: int, num_points: int) -> bool:
        """Stop when the share of confident points exceeds ``depth_confidence``.

        ``num_points`` counts every point of the pair, so pruned points count as confident.
        """
        unconfident = int((confidence < self.confidence_thresholds[layer]).sum())
        return 1.0 - unconfident / num_points > self.conf['depth_confidence']

    def _keep_mask(
        self,
        confidence: torch.Tensor | None,
        matchability: torch.Tensor,
        layer: int,
        n0: int,
        device: torch.device,
    ) -> torch.Tensor:
        """Points that stay: matchable ones, and unconfident ones (they may still change)."""
        keep = matchability > 1.0 - self.conf['width_confidence']
        if confidence is not None:
            keep |= confidence <= self.confidence_thresholds[layer]
        min_points = self.prune_min_points.get(device.type, -1)
        if n0 <= min_points:
            keep[:n0] = True
        if keep.shape[0] - n0 <= min_points:
            keep[n0:] = True
        return keep

    # ----------------------------------------------------------------------------- forward
    def forward(
        self,
        kpts0: torch.Tensor,
        desc0: torch.Tensor,
        size0: Size,
        kpts1: torch.Tensor,
        desc1: torch.Tensor,
        size1: Size,
        *,
        scales0: torch.Tensor | None = None,
        oris0: torch.Tensor | None = None,
        scales1: torch.Tensor | None = None,
        oris1: torch.Tensor | None = None,
    ) -> dict:
        """Match the keypoints of two images.

        ``kpts`` are ``(1, N, 2)`` (or ``(N, 2)``) pixel coordinates, ``desc`` ``(1, N, D)``
        descriptors, ``size`` the image ``(width, height)``. ``scales``/``oris`` ``(1, N)`` are
        needed with ``add_scale_ori``. See the class docstring for the returned dict. Matching
        runs without autograd (the adaptive forward is for inference).
        """
        return self.match_prepared(
            self.prepare(kpts0, desc0, size0, scales0, oris0, index=0),
            self.prepare(kpts1, desc1, size1, scales1, oris1, index=1),
        )

    def prepare(
        self,
        kpts: torch.Tensor,
        desc: torch.Tensor,
        size: Size,
        scales: torch.Tensor | None = None,
        oris: torch.Tensor | None = None,
        index: int = 0,
    ) -> dict:
        """The work on one image that does not depend on the other image.

        The input projection, the rotary encoding and the first layer's self-attention see one
        image only. A sequential stream matches every frame twice (against its predecessor,
        then its successor), so doing this once per frame and keeping the result saves one of
        the four attentions of the first layer per frame. Pass the results to
        :meth:`match_prepared`; they belong to this model and its current weights.
        """
        kpts, desc = self._check_inputs(kpts, desc, index)
        num, dim = kpts.shape[0], self.conf['descriptor_dim']
        coords = normalize_keypoints(kpts, size)
        if self.conf['add_scale_ori']:
            coords = self._with_scale_ori(coords, scales, oris)
        use_amp = self._use_amp(desc.device)
        with torch.no_grad():
            # Rotary encoding in float32 (phases lose too much in float16); under autocast it
            # is applied as cosines and sines, otherwise as complex rotations.
            rope = self.posenc(coords[None]) if use_amp else self.posenc.rotations(coords[None])
            with self._autocast(use_amp):
                x = self.input_proj(desc)
                buf = x.new_empty(1, num, 2 * dim)
                buf[0, :, :dim] = x
                if num:
                    buf = self.transformers[0].self_attn(buf, rope, num)
        return {
            'tokens': buf[0, :, :dim],
            'rope': rope,
            'num': num,
            'model': self,
            'version': self._weights_version(),
        }

    def match_prepared(self, prepared0: dict, prepared1: dict) -> dict:
        """Match two images prepared by :meth:`prepare` (see the class docstring)."""
        if not self.owns(prepared0, prepared1):
            raise ValueError(
                'prepared keypoints come from another LightGlue or from '
                'other weights: prepare them with this model'
            )
        num0, num1 = prepared0['num'], prepared1['num']
        like = prepared0['tokens']
        if num0 == 0 or num1 == 0:
            return self._empty_result(num0, num1, 0, like)
        dim = self.conf['descriptor_dim']
        with torch.no_grad(), self._autocast(self._use_amp(like.device)):
            # Token buffer: descriptors in [..., :dim], attention context in [..., dim:].
            buf = like.new_empty(1, num0 + num1, 2 * dim)
            buf[0, :num0, :dim] = prepared0['tokens']
            buf[0, num0:, :dim] = prepared1['tokens']
            rope = torch.cat([prepared0['rope'], prepared1['rope']], 1)
            return self._match(rope, buf, num0, num1)

    def _use_amp(self, device: torch.device) -> bool:
        return bool(self.conf['mp']) and device.type == 'cuda'

    @staticmethod
    def _autocast(enabled: bool):
        return torch.autocast('cuda', dtype=torch.float16) if enabled else contextlib.nullcontext()

    def owns(self, *prepared: dict) -> bool:
        """Whether all ``prepared`` came from this model's :meth:`prepare`, with these weights.

        The weights' version is read once per call (it walks every parameter).
        """
        version = self._weights_version()
        return all(p.get('model') is self and p.get('version') == version for p in prepared)

    def _weights_version(self) -> tuple:
        return params_key(list(self.parameters()))

    def _check_inputs(
        self, kpts: torch.Tensor, desc: torch.Tensor, index: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if kpts.ndim == 3:
            if kpts.shape[0] != 1 or desc.ndim != 3 or desc.shape[0] != 1:
                raise ValueError(
                    'LightGlue matches one pair: expected kpts (1, N, 2) and '
                    f'desc (1, N, D), got {tuple(kpts.shape)}, {tuple(desc.shape)}'
                )
            kpts, desc = kpts[0], desc[0]
        if (
            kpts.ndim != 2
            or kpts.shape[-1] != 2
            or desc.ndim != 2
            or desc.shape[0] != kpts.shape[0]
        ):
            raise ValueError(
                f'image {index}: expected kpts (N, 2) and desc (N, D), got '
                f'{tuple(kpts.shape)} and {tuple(desc.shape)}'
            )
        if desc.shape[0] and desc.shape[1] != self.conf['input_dim']:
            raise ValueError(
                f'image {index}: descriptors have {desc.shape[1]} channels, this '
                f'LightGlue expects {self.conf["input_dim"]}'
            )
        return kpts.float(), desc.to(self.posenc.Wr.weight.dtype)

    @staticmethod
    def _with_scale_ori(
        coords: torch.Tensor, scales: torch.Tensor | None, oris: torch.Tensor | None
    ) -> torch.Tensor:
        if scales is None or oris is None:
            raise ValueError('add_scale_ori needs scales and oris of both images')
        return torch.cat(
            [coords, scales.reshape(-1, 1).to(coords), oris.reshape(-1, 1).to(coords)], -1
        )

    def _match(self, rope: torch.Tensor, buf: torch.Tensor, num0: int, num1: int) -> dict:
        """Layers and assignment on a buffer whose first self-attention already ran."""
        n_layers, dim = self.conf['n_layers'], self.conf['descriptor_dim']
        early, prune = self.early_exit_enabled, self.pruning_enabled
        ids = torch.arange(num0 + num1, device=buf.device)  # original index of each token
        n0 = num0
        layer = 0
        for layer in range(n_layers):
            buf = self.transformers[layer](buf, rope, n0, self_done=layer == 0)
            if layer == n_layers - 1 or not (early or prune):
                continue  # no decisions after the last layer
            confidence, matchability = self._decision_scores(layer, buf[0, :, :dim], early, prune)
            if early and self._exit_now(confidence, layer, num0 + num1):
                break
            if prune:
                keep = self._keep_mask(confidence, matchability, layer, n0, buf.device)
                kept = keep.nonzero().squeeze(1)
                if kept.shape[0] < keep.shape[0]:
                    n0 = int(keep[:n0].sum())
                    buf, rope, ids = (
                        buf.index_select(1, kept),
                        rope.index_select(1, kept),
                        ids[kept],
                    )
                if n0 == 0 or n0 == buf.shape[1]:
                    return self._empty_result(num0, num1, layer + 1, buf, (n0, buf.shape[1] - n0))
        return self._assign(layer, buf[0, :, :dim], n0, ids, num0, num1)

    def _assign(
        self, layer: int, x: torch.Tensor, n0: int, ids: torch.Tensor, num0: int, num1: int
    ) -> dict:
        out = F.linear(x, *self.log_assignment[layer].projection())
        mdesc, z = out[:, :-1], out[:, -1]
        m0, s0, m1, s1 = assign_matches(
            mdesc[:n0],
            mdesc[n0:],
            z[:n0],
            z[n0:],
            self.conf['filter_threshold'],
            self.conf['assignment_block_elements'],
        )
        ids0, ids1 = ids[:n0], ids[n0:] - num0
        valid = m0 >= 0
        matches = torch.stack([ids0[valid], ids1[m0[valid]]], 1)
        matches0 = torch.full((num0,), -1, dtype=torch.long, device=x.device)
        matches1 = torch.full((num1,), -1, dtype=torch.long, device=x.device)
        matches0[ids0] = torch.where(valid, ids1[m0.clamp(min=0)], -1)
        matches1[ids1] = torch.where(m1 >= 0, ids0[m1.clamp(min=0)], -1)
        scores0 = s0.new_zeros(num0).index_copy_(0, ids0, s0)
        scores1 = s1.new_zeros(num1).index_copy_(0, ids1, s1)
        return {
            'matches': matches,
            'scores': s0[valid],
            'matches0': matches0,
            'matching_scores0': scores0,
            'matches1': matches1,
            'matching_scores1': scores1,
            'layers_used': layer + 1,
            'layers_total': self.conf['n_layers'],
            'pruned': (n0, x.shape[0] - n0),
        }

    def _empty_result(
        self, num0: int, num1: int, layers: int, like: torch.Tensor, remaining: tuple | None = None
    ) -> dict:
        device = like.device
        return {
            'matches': torch.empty((0, 2), dtype=torch.long, device=device),
            'scores': torch.empty(0, device=device),
            'matches0': torch.full((num0,), -1, dtype=torch.long, device=device),
            'matching_scores0': torch.zeros(num0, device=device),
            'matches1': torch.full((num1,), -1, dtype=torch.long, device=device),
            'matching_scores1': torch.zeros(num1, device=device),
            'layers_used': layers,
            'layers_total': self.conf['n_layers'],
            'pruned': remaining if remaining is not None else (num0, num1),
        }
