"""The pipelines of the VIO evaluation (glue_ros.evaluation.vio), each fed frame by frame.

``klt`` is VINS-Fusion's tracker; ``learned`` and ``hybrid`` are our front-end as the node runs
it, matching every frame or with optical flow between learned frames. A pipeline's step returns
what an estimator would get from that frame, and the time it took.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable

import numpy as np

from glue_ros.core.camera import CameraModel
from glue_ros.evaluation.klt import KLTConfig, KLTTracker
from glue_ros.evaluation.sequence_truth import VioSequence
from glue_ros.frontend.frontend import Frontend, FrontendConfig
from glue_ros.matcher import Matcher, MatcherConfig, build_matcher

PIPELINES = ('klt', 'learned', 'hybrid')
# What a pipeline's step returns: observations [(frame, points, ids)], learned or None, seconds.
Step = tuple[list, bool | None, float]


def hybrid_available() -> bool:
    """Whether the installed front-end has hybrid (optical flow) tracking."""
    return 'tracking' in {f.name for f in dataclasses.fields(FrontendConfig)}


def available_pipelines() -> tuple:
    """The pipelines this installation can run."""
    return tuple(p for p in PIPELINES if p != 'hybrid' or hybrid_available())


class KLTPipeline:
    """The KLT baseline: every point it publishes, with VINS's ids."""

    name = 'klt'

    def __init__(self, config: KLTConfig | None = None) -> None:
        self.config = config or KLTConfig()

    def start(self, sequence: VioSequence) -> None:
        """A new sequence (intrinsics for the F check in VINS's virtual camera)."""
        self.tracker = KLTTracker(self.config, K=sequence.K)

    def step(self, k: int, image: np.ndarray, stamp: float) -> Step:
        """(observations [(frame, points, ids)], learned frame or None, seconds)."""
        start = time.perf_counter()
        points, ids = self.tracker.process(image)
        seconds = time.perf_counter() - start
        return [(k, points, ids)], None, seconds


class FrontendPipeline:
    """Our front-end (learned every frame, or hybrid), fed as the node feeds it."""

    def __init__(self, name: str, matcher: Matcher, config: FrontendConfig) -> None:
        self.name, self.matcher, self.config = name, matcher, config

    def start(self, sequence: VioSequence) -> None:
        """A new Frontend for a new sequence; its camera where the intrinsics are known."""
        self.frontend = Frontend(self.matcher, self.config)
        self.camera = None if sequence.K is None else camera_model(sequence.K, sequence.size)
        self.seen = set()

    def step(self, k: int, image: np.ndarray, stamp: float) -> Step:
        """(observations [(frame, points, ids)], learned frame or None, seconds)."""
        start = time.perf_counter()
        out = self.frontend.process(image, stamp, camera=self.camera, tag=k)
        seconds = time.perf_counter() - start
        if out is None:
            return [], True, seconds
        ids = np.asarray(out.track_ids)
        tracked = ids > 0
        observations = [(k, out.result.points0[tracked], ids[tracked])]
        fresh = tracked & ~np.isin(ids, np.fromiter(self.seen, np.uint64, len(self.seen)))
        if fresh.any():
            # a new track's first match observes it in the reference frame too
            observations.append((out.reference_tag, out.result.points1[fresh], ids[fresh]))
        self.seen.update(int(i) for i in ids[tracked])
        return observations, bool(getattr(out, 'learned', True)), seconds


Pipeline = KLTPipeline | FrontendPipeline


def camera_model(K: np.ndarray, size: tuple[int, int]) -> CameraModel:
    """A distortion-free CameraModel of intrinsics K."""
    w, h = size
    return CameraModel(w, h, 'plumb_bob', np.zeros(5), K, np.eye(3), np.c_[K, np.zeros(3)])


def build_pipelines(
    names: Iterable[str] | None = None,
    matcher_config: MatcherConfig | None = None,
    frontend_config: FrontendConfig | None = None,
) -> list[Pipeline]:
    """The pipelines by name; learned and hybrid share one matcher of matcher_config."""
    names = list(names or available_pipelines())
    unknown = [n for n in names if n not in PIPELINES]
    if unknown:
        raise ValueError(f'unknown pipelines {unknown}; known: {", ".join(PIPELINES)}')
    if 'hybrid' in names and not hybrid_available():
        raise ValueError(
            "the 'hybrid' pipeline needs FrontendConfig.tracking, which this "
            'front-end does not have'
        )
    frontend_config = frontend_config or FrontendConfig()
    matcher = None
    if {'learned', 'hybrid'} & set(names):
        matcher = build_matcher(matcher_config or MatcherConfig())
    pipelines = []
    for name in names:
        if name == 'klt':
            pipelines.append(KLTPipeline())
        elif name == 'learned':
            config = frontend_config
            if hybrid_available():
                config = dataclasses.replace(config, tracking='match')
            pipelines.append(FrontendPipeline(name, matcher, config))
        else:
            pipelines.append(
                FrontendPipeline(
                    name, matcher, dataclasses.replace(frontend_config, tracking='flow')
                )
            )
    return pipelines


def warm_up(pipeline: Pipeline, sequence: VioSequence) -> None:
    """A few frames untimed (first-call costs of the networks are not a frame rate)."""
    pipeline.start(sequence)
    for k in range(min(3, len(sequence.frames))):
        pipeline.step(k, sequence.frames[k], float(sequence.stamps[k]))
