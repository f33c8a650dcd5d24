"""glibc malloc settings for a long-running matcher process (the node).

glibc raises its mmap threshold dynamically (up to 32 MiB on 64-bit) whenever a large mmapped
block is freed; from then on buffers of that size come from the heap arenas instead. A matcher
allocates large tensors of a new size on almost every frame (early exit and pruning change the
shapes, images arrive from DDS in new buffers), which fragments those arenas, and memory freed
inside them is not given back to the system: the resident size creeps up for hours.

Setting the threshold explicitly turns the dynamic raise off: every block above it is mmapped
and returned to the system when freed. Fewer arenas bound the heaps a process with executor,
worker and torch threads keeps. Measured with ``glue-ros-bench --soak`` (see the README).
"""
from __future__ import annotations

import ctypes
import ctypes.util
from typing import Optional

M_TRIM_THRESHOLD = -1
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


def configure_for_streaming(mmap_threshold: int = 1 << 20, arena_max: int = 2,
                            trim_threshold: int = 8 << 20) -> bool:
    """Apply the settings above; False where the C library is not glibc (nothing changed)."""
    libc = _libc()
    if libc is None:
        return False
    ok = libc.mallopt(M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
    ok &= libc.mallopt(M_TRIM_THRESHOLD, int(trim_threshold)) == 1
    ok &= libc.mallopt(M_ARENA_MAX, int(arena_max)) == 1
    return bool(ok)


def release_free_memory() -> bool:
    """Give the free memory at the top of glibc's heaps back to the system (malloc_trim)."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))


__all__ = ['configure_for_streaming', 'release_free_memory']
