"""The allocator of a long-running matcher process (the node): jemalloc, or glibc tuned.

A matcher allocates large tensors of a new size on almost every frame (early exit and pruning
change the shapes; a camera that keeps giving new views changes the keypoint layouts), among the
small long-lived allocations of everything else (tensor metadata, DDS, the executor). glibc puts
both in the same heaps: the small blocks land inside the holes the large ones leave, and split
them into pieces too small for the next large tensor, so the heap keeps growing. Measured in the
node with a 60 Hz camera panning back and forth (mallinfo2 every 10 s): memory in use flat at
140 MB, free chunks inside the heap +55 a second (one per received image), the heap's address
space +150 MB a minute; with the free pages handed back every second (:class:`HeapTrimmer`)
RssAnon still rose by a quarter over the first five minutes.

**jemalloc** keeps small and large blocks apart (size classes and page runs of their own) and
returns unused pages on a timer: the node re-executes itself with it preloaded
(:func:`reexec_with_jemalloc`, before any import of torch) when the library is installed
(Debian/Ubuntu ``libjemalloc2``). Otherwise glibc is tuned (:func:`configure_for_streaming`): its
mmap threshold fixed at 16 MiB (which turns off the dynamic raise that moves ever larger
buffers into the heap) and 2 arenas, and :class:`HeapTrimmer` calls malloc_trim between frames.
Figures: docs/benchmarks.md, "A camera streaming while the node matches"; design notes:
docs/design.md, "Memory over hours".

GLUE_ROS_ALLOCATOR: ``auto`` (the default: jemalloc where installed, else glibc tuned),
``jemalloc`` (the same, with a warning when it is missing), ``glibc`` (glibc tuned) or
``system`` (the C library as it comes, nothing changed).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import time

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ALLOCATOR_ENV = 'GLUE_ROS_ALLOCATOR'
ALLOCATORS = ('auto', 'jemalloc', 'glibc', 'system')
# Set in the re-executed process: never preload twice, even where preloading failed.
_REEXEC_ENV = 'GLUE_ROS_JEMALLOC_PRELOADED'


def requested() -> str:
    """GLUE_ROS_ALLOCATOR; ``auto`` when unset or unknown (:func:`setup` says which)."""
    value = os.environ.get(ALLOCATOR_ENV) or 'auto'
    return value if value in ALLOCATORS else 'auto'


def jemalloc_library() -> str | None:
    """jemalloc's shared library as the dynamic loader finds it; None where not installed."""
    return ctypes.util.find_library('jemalloc')


def jemalloc_active() -> bool:
    """True when this process allocates with jemalloc (it exports mallctl)."""
    return hasattr(ctypes.CDLL(None), 'mallctl')


def reexec_with_jemalloc(argv: list[str] | None = None) -> None:
    """Re-execute this process with jemalloc preloaded, where it is wanted and installed.

    For a process's entry point, before torch is imported: the process keeps its id, arguments,
    environment and standard streams (launch and signals see no change). Returns where nothing
    is to be done: GLUE_ROS_ALLOCATOR asks otherwise, jemalloc is already in, not installed, or
    this is the re-executed process already.
    """
    if requested() not in ('auto', 'jemalloc') or os.environ.get(_REEXEC_ENV):
        return
    library = jemalloc_library()
    if library is None or jemalloc_active():
        return
    env = dict(os.environ)
    env['LD_PRELOAD'] = ' '.join(filter(None, (library, env.get('LD_PRELOAD'))))
    env[_REEXEC_ENV] = library
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, list(sys.orig_argv if argv is None else argv), env)


def setup() -> str:
    """Settle this process's allocator before the big allocations; returns a line for the log.

    Where jemalloc is in (:func:`reexec_with_jemalloc`) nothing more is needed; glibc is tuned
    unless GLUE_ROS_ALLOCATOR=system.
    """
    value = os.environ.get(ALLOCATOR_ENV) or 'auto'
    unknown = '' if value in ALLOCATORS else f' ({ALLOCATOR_ENV}={value!r} is unknown: auto)'
    if jemalloc_active():
        return 'jemalloc' + unknown
    choice = requested()
    if choice == 'system':
        return "the C library's own settings" + unknown
    if choice == 'glibc':
        why = ''
    elif jemalloc_library() is None:
        why = ' (jemalloc is not installed: libjemalloc2)'
    else:
        why = ' (jemalloc is installed but not preloaded in this process)'
    if not configure_for_streaming():
        return f"the C library's own settings (not glibc){why}{unknown}"
    return f'glibc, mmap threshold 16 MiB, 2 arenas, heap released between frames{why}{unknown}'


def uses_tuned_glibc() -> bool:
    """True when the heap is glibc's with :func:`configure_for_streaming`'s settings."""
    return not jemalloc_active() and requested() != 'system' and _libc() is not None


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

    On where glibc is tuned (:func:`uses_tuned_glibc`): jemalloc returns pages on its own, and
    GLUE_ROS_ALLOCATOR=system leaves the C library as it comes.
    """

    def __init__(self, interval_s: float = 1.0, enabled: bool | None = None):
        self.interval_s = float(interval_s)
        self.enabled = uses_tuned_glibc() if enabled is None else bool(enabled)
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


__all__ = [
    'ALLOCATORS',
    'HeapTrimmer',
    'configure_for_streaming',
    'jemalloc_active',
    'jemalloc_library',
    'reexec_with_jemalloc',
    'release_free_memory',
    'requested',
    'setup',
    'uses_tuned_glibc',
]
