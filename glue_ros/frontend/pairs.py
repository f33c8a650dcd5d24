"""Two images matched and verified with no stream state: stereo pairs and chosen pairs.

:class:`~glue_ros.frontend.frontend.Frontend` answers ``match_pair`` and ``process_stereo``
with these (adding, for stereo, the time check and the left image's tracks); its sequential
tracking verifies each pair of views with the same :func:`verify`, so every mode holds matches
to one threshold and one seed.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

import numpy as np

from glue_ros.core.camera import CameraModel, filter_stereo_matches
from glue_ros.frontend import geometry
from glue_ros.frontend.config import FrontendConfig
from glue_ros.frontend.geometry import Verification
from glue_ros.frontend.output import FrameOutput

if TYPE_CHECKING:
    from glue_ros.matcher import Matcher

# The (query, reference) or (left, right) cameras of a pair, None where unknown.
Cameras = tuple[CameraModel | None, CameraModel | None]


def verify(
    config: FrontendConfig,
    points0: np.ndarray,
    points1: np.ndarray,
    camera0: CameraModel | None,
    camera1: CameraModel | None,
    grid_step: float,
    check: str | None = None,
    forced: str | None = None,
) -> Verification:
    """The configured check on one pair of views; `check` where the scene chose, `forced` wins.

    ``geometric_check='none'`` turns off every check but a forced one.
    """
    # Coarse LoFTR points are cell centres: their error is up to half a cell.
    threshold = max(config.ransac_threshold, 0.5 * grid_step)
    if config.geometric_check == 'none':
        check = 'none'
    return geometry.verify(
        points0,
        points1,
        forced or check or config.geometric_check,
        camera0,
        camera1,
        threshold,
        seed=config.ransac_seed,
    )


def match_pair(
    matcher: Matcher,
    config: FrontendConfig,
    image0: np.ndarray,
    image1: np.ndarray,
    cameras: Cameras = (None, None),
    check: str | None = None,
) -> FrameOutput:
    """Two chosen images, verified (`check` overrides the configured geometric check)."""
    if check is not None and check not in geometry.CHECKS:
        raise ValueError(f'geometric check {check!r} is not one of {", ".join(geometry.CHECKS)}')
    start = time.perf_counter()
    features0, features1 = matcher.extract(image0), matcher.extract(image1)
    extract_ms = (time.perf_counter() - start) * 1e3
    raw = matcher.match(features0, features1)
    verify_start = time.perf_counter()
    verification = verify(
        config, raw.points0, raw.points1, cameras[0], cameras[1], raw.grid_step, forced=check
    )
    result = raw.subset(verification.inliers)
    done = time.perf_counter()
    result.timing_ms.update(
        extract=extract_ms,
        match=raw.timing_ms.get('match', 0.0),
        verify_track=(done - verify_start) * 1e3,
        total=(done - start) * 1e3,
    )
    return FrameOutput(result, verification, None, len(raw) - len(result), features0)


def match_stereo(
    matcher: Matcher,
    config: FrontendConfig,
    left: np.ndarray,
    right: np.ndarray,
    cameras: Cameras = (None, None),
    tag: object = None,
) -> FrameOutput:
    """Left against right: the rectified row test first when ``max_epipolar_error`` is set.

    The robust model then runs on the matches the row test kept; the verification's inliers
    are over all raw matches. No total time: the caller adds what it does after.
    """
    start = time.perf_counter()
    features_left = matcher.extract(left)
    features_right = matcher.extract(right)
    extract_ms = (time.perf_counter() - start) * 1e3
    raw = matcher.match(features_left, features_right)
    verify_start = time.perf_counter()
    rows_ok = np.ones(len(raw), bool)
    if config.max_epipolar_error > 0:
        _, rows_ok = filter_stereo_matches(
            raw, config.max_epipolar_error, min_disparity=-raw.grid_step
        )
    keep = np.zeros(len(raw), bool)
    sel = np.flatnonzero(rows_ok)
    verification = verify(
        config, raw.points0[sel], raw.points1[sel], cameras[0], cameras[1], raw.grid_step
    )
    keep[sel] = verification.inliers
    verification = dataclasses.replace(verification, inliers=keep)
    result = raw.subset(keep)
    result.timing_ms['extract'] = extract_ms
    result.timing_ms.setdefault('match', 0.0)
    result.timing_ms['verify_track'] = (time.perf_counter() - verify_start) * 1e3
    return FrameOutput(
        result,
        verification,
        None,
        int(len(raw) - keep.sum()),
        features_left,
        reference_tag=tag,
    )
