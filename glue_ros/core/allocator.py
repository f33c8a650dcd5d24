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
"""
from __future__ import annotations

import ctypes
import ctypes.util
from typing import Optional

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def _libc() -> Optional[ctypes.CDLL]:
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


__all__ = ['configure_for_streaming']
