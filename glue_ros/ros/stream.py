"""The matcher node's image stream: subscriptions, the worker thread and the frames it matches.

Subscription callbacks only store the newest frame (or stereo pair), still serialized; the
worker decodes and matches the newest one and counts the frames it never got to. MatcherNode
takes these methods from ImageStream; its state stays declared in MatcherNode.__init__.
"""

from __future__ import annotations

import threading
import time

from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from glue_ros.core.errors import GlueRosError, ImageConversionError
from glue_ros.core.scheduling import Frame, LatestSlot, StereoPairer, stereo_size_problem
from glue_ros.frontend import records
from glue_ros.frontend.frontend import FrameOutput
from glue_ros.ros import raw_images
from glue_ros.ros.input_watch import InputWatch

THROTTLE_S = 5.0


def stamp_seconds(header: Header) -> float:
    """A header stamp in seconds."""
    return header.stamp.sec + header.stamp.nanosec * 1e-9


class ImageStream:
    """The image side of MatcherNode: reception on the executor, inference on a worker.

    A mixin: the attributes it uses (slot, sync, worker, health, ...) are the node's.
    """

    # -- start, stop ---------------------------------------------------------------------------
    def _start_stream(self) -> None:
        """Subscribe the images (serialized: only the frame the worker takes is decoded)."""
        self.slot = LatestSlot()
        self.sync = StereoPairer(
            round(self.params['sync_slop'] * 1e9), self.params['sync_queue_size']
        )
        image_qos = self._image_qos or QoSProfile(
            depth=self.params['image_qos_depth'],
            reliability=qos_profile_sensor_data.reliability,
            history=qos_profile_sensor_data.history,
        )
        self._image_type = CompressedImage if self.params['use_compressed'] else Image
        sides = self._sides()
        self._image_subscriptions = {
            side: self.create_subscription(
                self._image_type,
                self._image_name(side),
                lambda m, s=side: self._on_image(m, s),
                image_qos,
                raw=True,
            )
            for side in sides
        }
        self._received = dict.fromkeys(sides, 0)
        self.input_watch = InputWatch()
        self._watch_timer = self.create_timer(1.0, self._watch_inputs)
        self._running = True
        self.worker = threading.Thread(target=self._work, name='glue_ros_matcher', daemon=True)
        self.worker.start()

    def _stop_stream(self) -> None:
        self._running = False
        if self.worker is not None:
            self.slot.close()
            self.worker.join(timeout=10)
            self.worker = None
        for subscription in self._image_subscriptions.values():
            self.destroy_subscription(subscription)
        if self._image_subscriptions:
            # What arrived after the worker's last take is dropped: every frame is accounted.
            job, dropped = self.slot.take(timeout=0)
            self.health.add(time.monotonic(), 'dropped', dropped + (job is not None))
        self._image_subscriptions = {}
        if self._watch_timer is not None:
            self.destroy_timer(self._watch_timer)
            self._watch_timer = None

    # -- reception (executor thread: never blocks) --------------------------------------
    def _on_image(self, raw: bytes, side: str | None) -> None:
        """Count the frame and store it serialized: the stamp is all pairing needs."""
        arrival = time.monotonic()
        self.health.add(arrival, 'received')
        self._received[side] += 1
        try:
            frame = Frame(
                raw_images.stamp_ns_of(raw, self._image_type), raw=raw, side=side, arrival=arrival
            )
        except ImageConversionError as exc:
            self._bad_frame(f'{side + " " if side else ""}image skipped: {exc}')
            return
        if side is None:
            self.slot.put(('sequential', frame))
            return
        pair = self.sync.add(side, frame)
        if pair is not None:
            self.slot.put(('stereo', pair))

    def _watch_inputs(self) -> None:
        """Say why images are missing when a publisher is connected but nothing arrives."""
        now = time.monotonic()
        for side, subscription in self._image_subscriptions.items():
            topic = subscription.topic_name
            warning = self.input_watch.check(
                topic, now, self.count_publishers(topic), self._received[side]
            )
            if warning:
                self.get_logger().warning(warning, throttle_duration_sec=THROTTLE_S)

    def _bad_frame(self, text: str) -> None:
        self.health.add(time.monotonic(), 'bad')
        self.get_logger().warning(text, throttle_duration_sec=THROTTLE_S)

    # -- inference (worker thread) -------------------------------------------------------
    def _work(self) -> None:
        while self._running:
            job, dropped = self.slot.take()
            if job is None:
                continue
            self.health.add(time.monotonic(), 'dropped', dropped)
            problem = raw_images.decode_frames(
                job[1] if job[0] == 'stereo' else (job[1],), self._image_type
            )
            if problem:
                self._bad_frame(problem)
                continue
            with self.inference:
                if self.matcher is None:
                    continue
                try:
                    if job[0] == 'sequential':
                        self._process_sequential(job[1], dropped)
                    else:
                        self._process_stereo(*job[1], dropped)
                    self.health.add(time.monotonic(), 'processed')
                except GlueRosError as exc:
                    self._bad_frame(f'frame skipped: {exc}')
                except Exception as exc:  # noqa: BLE001 - a bad frame must never end the node
                    self._bad_frame(
                        f'frame skipped after an unexpected {type(exc).__name__}: {exc}'
                    )
            self.trim_heap()

    def _process_sequential(self, frame: Frame, dropped: int) -> None:
        out = self.frontend.process(
            frame.image, stamp_seconds(frame.header), camera=self.cameras.get(0), tag=frame
        )
        if self.frontend.last_features is not None:  # None on a flow frame
            self.outputs.keypoints_of(frame, self.frontend.last_features, self.config)
        if out is None:
            return
        self._publish(
            out, frame, out.reference_tag, records.MODE_SEQUENTIAL, dropped, frame.arrival
        )

    def _process_stereo(self, left: Frame, right: Frame, dropped: int) -> None:
        problem = stereo_size_problem(left.image, right.image)
        if problem:
            self._bad_frame(f'stereo pair skipped: {problem}')
            return
        out = self.frontend.process_stereo(
            left.image,
            right.image,
            stamp_seconds(left.header),
            cameras=(self.cameras.get(0), self.cameras.get(1)),
            tag=left,
        )
        self.outputs.keypoints_of(left, out.features, self.config)
        self._publish(
            out, left, right, records.MODE_STEREO, dropped, max(left.arrival, right.arrival)
        )

    def _publish(
        self,
        out: FrameOutput,
        frame: Frame,
        reference: Frame,
        mode: int,
        dropped: int,
        arrival: float,
    ) -> None:
        latency_ms = self.outputs.matches_of(
            out,
            frame,
            reference,
            mode=mode,
            matcher=self.matcher.name,
            dropped=dropped,
            arrival=arrival,
        )
        now = time.monotonic()
        self.health.add(now, 'published')
        self.health.add(now, 'latency_ms', latency_ms)
        result = out.result
        self.get_logger().debug(
            f'{len(result)} matches, layers {result.layers_used}/'
            f'{result.layers_total}, latency {latency_ms:.1f} ms'
        )
        self.outputs.vins_of(
            out,
            frame,
            self.frontend.tracks.sequences,
            self.cameras.for_vins,
            stereo=mode == records.MODE_STEREO,
        )


__all__ = ['THROTTLE_S', 'ImageStream', 'stamp_seconds']
