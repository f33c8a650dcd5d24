"""Frames, stereo pairing and the worker's hand-over, free of ROS.

The node and glue-ros-bag pair stereo images and check them the same way; keeping that here
means the live and the offline output cannot drift apart.
"""

from __future__ import annotations

import signal
import threading
from collections import deque
from collections.abc import Callable
from types import FrameType
from typing import Any

import numpy as np


class Frame:
    """One image on its way to the front-end.

    The node keeps the serialized message in `raw` until the worker takes the frame
    (:meth:`decode`); the bag tool decodes at once. `header` is the message's header (rclpy or
    rosbags), passed through to the output untouched; `bag_ns` is the bag timestamp (offline).
    """

    __slots__ = ('stamp_ns', 'image', 'header', 'raw', 'side', 'arrival', 'bag_ns')

    def __init__(
        self,
        stamp_ns: int,
        image: np.ndarray | None = None,
        header: Any = None,
        *,
        raw: bytes | None = None,
        side: str | None = None,
        arrival: float = 0.0,
        bag_ns: int | None = None,
    ) -> None:
        self.stamp_ns, self.image, self.header = int(stamp_ns), image, header
        self.raw, self.side, self.arrival, self.bag_ns = raw, side, arrival, bag_ns

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the decoded image."""
        assert self.image is not None, 'the frame is not decoded yet'
        return self.image.shape[1], self.image.shape[0]

    def decode(self, decoder: Callable[[bytes], tuple[Any, np.ndarray]]) -> None:
        """Set header and image from `decoder(raw)` and let the serialized bytes go.

        A frame kept as the keyframe then holds its pixels once; the decoder raises a
        GlueRosError on a malformed image.
        """
        assert self.raw is not None, 'the frame is decoded already'
        self.header, self.image = decoder(self.raw)
        self.raw = None


def stereo_size_problem(left: np.ndarray, right: np.ndarray) -> str | None:
    """Why two images cannot be a stereo pair (different sizes), or None."""
    if left.shape[:2] == right.shape[:2]:
        return None
    return f'left is {left.shape[1]}x{left.shape[0]}, right is {right.shape[1]}x{right.shape[0]}'


class StereoPairer:
    """Pairs left and right frames by stamp, exactly or within `slop_ns`.

    A frame pairs with the closest waiting frame of the other side; the older waiting frames
    can then no longer pair better and are dropped. Every frame that never pairs (dropped that
    way, pushed out of a full queue, or left at :meth:`flush`) is counted in `unpaired`.
    Thread-safe: image callbacks and a live slop change may run side by side.
    """

    def __init__(self, slop_ns: int, queue_size: int) -> None:
        self.slop_ns = int(slop_ns)
        self.queue_size = queue_size
        self.queues: dict[str, deque[Frame]] = {'left': deque(), 'right': deque()}
        self.unpaired = 0
        self._lock = threading.Lock()

    def add(self, side: str, frame: Frame) -> tuple[Frame, Frame] | None:
        """Add a frame; returns (left, right) when it completes a pair, else None."""
        with self._lock:
            mine = self.queues[side]
            other = self.queues['right' if side == 'left' else 'left']
            best: Frame | None = None
            best_dt: int | None = None
            for candidate in other:
                dt = abs(candidate.stamp_ns - frame.stamp_ns)
                if dt <= self.slop_ns and (best_dt is None or dt < best_dt):
                    best, best_dt = candidate, dt
            if best is None:
                mine.append(frame)
                if len(mine) > self.queue_size:
                    mine.popleft()
                    self.unpaired += 1
                return None
            while other[0] is not best:
                other.popleft()
                self.unpaired += 1
            other.popleft()
            self.unpaired += len(mine)
            mine.clear()
            return (frame, best) if side == 'left' else (best, frame)

    def flush(self) -> None:
        """Count the frames still waiting (end of the input) as unpaired."""
        with self._lock:
            self.unpaired += sum(len(q) for q in self.queues.values())
            for queue in self.queues.values():
                queue.clear()


class LatestSlot:
    """Holds only the newest job; counts the ones replaced before the worker took them."""

    def __init__(self) -> None:
        self._job: Any = None
        self._dropped = 0
        self._closed = False
        self._cv = threading.Condition()

    def put(self, job: Any) -> None:
        """Store a job, replacing (and counting as dropped) an untaken one."""
        with self._cv:
            if self._job is not None:
                self._dropped += 1
            self._job = job
            self._cv.notify()

    def take(self, timeout: float = 0.5) -> tuple[Any, int]:
        """(job, dropped since the last take), or (None, 0) on timeout or close."""
        with self._cv:
            if self._job is None and not self._closed:
                self._cv.wait(timeout)
            job, dropped = self._job, self._dropped
            self._job, self._dropped = None, 0
            return job, dropped

    def close(self) -> None:
        """Wake the worker for shutdown."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()


class TurnLock:
    """A lock granted in the order it was asked for.

    threading.Lock lets a thread that releases take it straight back, so back-to-back service
    requests could keep the worker waiting for several inferences; here each waits its turn.
    """

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    def __enter__(self) -> TurnLock:
        with self._cv:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._cv.wait()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._cv:
            self._serving += 1
            self._cv.notify_all()

    @property
    def waiting(self) -> int:
        """Threads that have asked and wait for their turn (the holder not counted)."""
        with self._cv:
            return max(0, self._next_ticket - self._serving - 1)


class StopRequest:
    """SIGINT / SIGTERM ask the spin loop to end; the node then winds down in order.

    rclpy's own handler shuts the context down inside the signal, while the worker may still be
    publishing a frame (its publish then fails and the final log line never reaches /rosout),
    and a second SIGINT (a terminal's Ctrl-C, then `ros2 launch`'s own) raises
    KeyboardInterrupt inside the shutdown. Here every signal only sets a flag.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = threading.Event()

    def install(self) -> None:
        """Handle SIGINT and SIGTERM from now on (main thread only)."""
        for signum in self.SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.requested.set()


__all__ = ['Frame', 'LatestSlot', 'StereoPairer', 'StopRequest', 'TurnLock', 'stereo_size_problem']
