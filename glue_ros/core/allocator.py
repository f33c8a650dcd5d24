"""glibc malloc settings for a long-running matcher process (the node).

glibc raises its mmap threshold dynamically (up to 32 MiB on 64-bit) whenever a large mmapped
block is freed; from then on buffers of that size come from the heap arenas instead. A matcher
allocates large tensors of a new size on almost every frame (early exit and pruning change the
shapes, images arrive from DDS in new buffers), which fragments those arenas, and memory freed
inside them is not given back to the system: the resident size creeps up for hours.

Setting the threshold explicitly turns the dynamic raise off (and with it glibc's automatic
raise of the trim threshold, so the top of the heap is given back again): every block above it is
mmapped and returned to the system when freed. Fewer arenas bound the heaps a process with
executor, worker and torch threads keeps. Measured with ``glue-ros-bench --soak`` at 640x480,
60 Hz, on a 2-core AMD EPYC (node RSS after one minute, and how it went on; matching time per
frame):
glibc's own settings 530 MB and growing (+6% by 150 s), 234 ms; threshold 1 MiB: flat at 390
MB but 293 ms (every tensor above 1 MiB is mapped and faulted in again each frame); 4 MiB: 505
MB, 261 ms; **16 MiB with 2 arenas: flat at 477-483 MB from 20 s on, 247 ms** (the default).

That was a camera cycling through 30 frames. A camera that keeps giving new views (back and forth
over one scene) gives the matcher tensors of sizes it has not seen yet, frame after frame, and
the holes they leave between blocks still in use are never handed back: measured in the node at
60 Hz (malloc_info), the memory in use stayed at 140-155 MB while the free memory kept inside
glibc's heaps rose from 51 to 320 MB in two minutes, and RssAnon with it (+150 MB a minute).
malloc_trim(0) hands the free pages back (10-40 ms on a 2-core AMD EPYC), so
:class:`HeapTrimmer` has the node's worker call it between frames, at most once a second.

What still grew after that (a quarter over the first five minutes) was no allocator's doing:
oneDNN compiled and cached a GELU kernel for every new keypoint count, small blocks scattered
through the heap that split its large holes as well; with them gone the heap settles (LightGlue
now runs ATen's GELU: glue_ros.models.lightglue.attention.gelu_aten). jemalloc, measured in its
place, was as flat and no faster under a stream (docs/design.md, "Memory over hours").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import time

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library('c')
    try:
        libc = ctypes.CDLL(name or 'libc.so.6')
        libc.mallopt  # noqa: B018 - glibc only; musl and others have none
        return libc
    except (OSError, AttributeError):
        return None


def configure_for_streaming(mmap_threshold: int = 16 << 20, arena_max: int = 2) -> bool:
    """Apply the settings above; False where the C library is not glibc (nothing changed)."""
    libc = _libc()
    if libc is None:
        return False
    ok = libc.mallopt(M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
    ok &= libc.mallopt(M_ARENA_MAX, int(arena_max)) == 1
    return bool(ok)


def release_free_memory() -> bool:
    """Hand the free pages inside glibc's heaps back to the system (malloc_trim(0)).

    True when memory was released; False when none was, or where the C library is not glibc.
    """
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0) == 1)


class HeapTrimmer:
    """Releases free heap memory between frames, at most once every `interval_s` seconds.

    GLUE_ROS_ALLOCATOR=system (the C library's own settings) turns it off.
    """

    def __init__(self, interval_s: float = 1.0, enabled: bool | None = None):
        self.interval_s = float(interval_s)
        self.enabled = (
            os.environ.get('GLUE_ROS_ALLOCATOR') != 'system' if enabled is None else bool(enabled)
        )
        self.last = -float('inf')
        self.calls = 0

    def __call__(self, now: float | None = None) -> bool:
        """Release if due; True when malloc_trim ran."""
        now = time.monotonic() if now is None else now
        if not self.enabled or now - self.last < self.interval_s:
            return False
        self.last = now
        self.calls += 1
        release_free_memory()
        return True


__all__ = ['configure_for_streaming', 'release_free_memory', 'HeapTrimmer']
