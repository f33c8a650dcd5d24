"""What glue-ros-bag does per frame: the front-end over a bag's images, its output written.

Every frame is processed (none dropped, unlike the node) and written with the image's own
stamps, from the same front-end records the node publishes (glue_ros.frontend.records).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from glue_ros.core.camera import CameraModel
from glue_ros.core.scheduling import Frame, stereo_size_problem
from glue_ros.frontend import records
from glue_ros.frontend.frontend import FrameOutput, Frontend
from glue_ros.frontend.vins import VinsOutput
from glue_ros.tools.bag_io import OutputBag

logger = logging.getLogger(__name__)


@dataclass
class Stats:
    """What the summary reports."""

    frames: int = 0  # images (sequential) or stereo pairs processed
    matched: int = 0  # frames that produced a Matches message
    skipped: int = 0  # images that could not be decoded or matched
    matches: list = field(default_factory=list)
    times_ms: list = field(default_factory=list)


class Processor:
    """Drives the front-end over the bag's frames and writes what it publishes."""

    def __init__(
        self,
        frontend: Frontend,
        out: OutputBag,
        cameras: Sequence[CameraModel | None] = (),
        vins_units: str | None = None,
    ) -> None:
        self.frontend = frontend
        self.matcher = frontend.matcher
        self.out = out
        self.cameras = list(cameras) + [None] * (2 - len(cameras))
        self.vins = VinsOutput(vins_units) if vins_units else None
        self.stats = Stats()

    def sequential(self, frame: Frame) -> None:
        """One image: match with the keyframe (or previous frame), write Matches [+ features]."""
        start = time.perf_counter()
        output = self.frontend.process(
            frame.image, frame.stamp_ns * 1e-9, camera=self.cameras[0], tag=frame
        )
        self.stats.frames += 1
        if output is None:
            self.stats.times_ms.append((time.perf_counter() - start) * 1e3)
            return
        self._write(output, frame, output.reference_tag, records.MODE_SEQUENTIAL, start)

    def stereo(self, left: Frame, right: Frame) -> None:
        """One synchronised pair: left/right Matches [+ features tracked on the left image]."""
        problem = stereo_size_problem(left.image, right.image)
        if problem:
            logger.warning('stereo pair skipped: %s', problem)
            self.stats.skipped += 1
            return
        start = time.perf_counter()
        output = self.frontend.process_stereo(
            left.image,
            right.image,
            left.stamp_ns * 1e-9,
            cameras=tuple(self.cameras[:2]),
            tag=left,
        )
        self.stats.frames += 1
        self._write(output, left, right, records.MODE_STEREO, start)

    def _write(
        self, output: FrameOutput, frame: Frame, reference: Frame, mode: int, start: float
    ) -> None:
        self.out.write_matches(
            frame,
            records.output_record(
                output,
                frame.header,
                reference.header,
                mode=mode,
                matcher=self.matcher.name,
                query_size=frame.size,
                reference_size=reference.size,
                latency_ms=(time.perf_counter() - start) * 1e3,
            ),
        )
        if self.vins is not None:
            features = self.vins.features(
                output,
                frame.stamp_ns,
                self.frontend.tracks.sequences,
                self.cameras.__getitem__,
                stereo=mode == records.MODE_STEREO,
            )
            if features is not None:
                self.out.write_features(frame, features)
        self.stats.matched += 1
        self.stats.matches.append(len(output.result))
        self.stats.times_ms.append((time.perf_counter() - start) * 1e3)
