"""The node's C allocator policy: applied where the C library is glibc, opt-out by variable."""
import platform
import subprocess
import sys

import pytest

glibc = pytest.mark.skipif(platform.libc_ver()[0] != 'glibc',
                           reason='mallopt is glibc-only; elsewhere the node leaves it alone')

SCRIPT = '''
import ctypes, sys
from glue_ros.core.allocator import configure_for_streaming
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.malloc_usable_size.argtypes = [ctypes.c_void_p]
if sys.argv[1] == 'streaming':
    assert configure_for_streaming()
# glibc raises its mmap threshold to the size of a freed mmapped block: after freeing 24 MiB,
# the next 20 MiB block comes from the heap. With the threshold fixed (16 MiB) it is mmapped.
block = libc.malloc(24 << 20)
libc.free(block)
small = libc.malloc(20 << 20)
with open('/proc/self/maps') as maps:
    heap = [line for line in maps if '[heap]' in line]
start, end = (int(v, 16) for v in heap[0].split()[0].split('-')) if heap else (0, 0)
print('heap' if start <= small < end else 'mmap')
'''


@glibc
@pytest.mark.parametrize('policy, where', [('system', 'heap'), ('streaming', 'mmap')])
def test_large_blocks_stay_mmapped_once_configured(policy, where):
    """The behaviour the policy exists for, in a fresh process: large blocks go back to the
    system when freed instead of settling in the heap after the first big free."""
    out = subprocess.run([sys.executable, '-c', SCRIPT, policy], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == where
