#!/usr/bin/env python3
"""Repair the CMake files of the PyPI ROS 2 wheels so colcon can build against them.

The wheels' exported CMake targets name the build machine's Python include and NumPy include
directories; CMake then refuses them as non-existent paths. Point them at this interpreter's
(NumPy's through a path outside the source tree, which CMake also refuses).
"""

import pathlib
import sys
import sysconfig

import numpy

BUILD_MACHINE_NUMPY = '/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include'
BUILD_MACHINE_PYTHON = '/opt/python/cp311-cp311/include/python3.11'


def main(prefix: str, numpy_include: str) -> int:
    """Rewrite every CMake file under <prefix>/share that names a build-machine path."""
    changed = 0
    here = {
        BUILD_MACHINE_NUMPY: numpy_include,
        numpy.get_include(): numpy_include,
        BUILD_MACHINE_PYTHON: sysconfig.get_paths()['include'],
    }
    for path in pathlib.Path(prefix, 'share').rglob('*.cmake'):
        text = path.read_text(errors='surrogateescape')
        new = text
        for old, new_path in here.items():
            new = new.replace(old, new_path)
        if new != text:
            path.write_text(new, errors='surrogateescape')
            changed += 1
    print(f'[glue_ros setup] repaired {changed} CMake files of the ROS 2 wheels')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else numpy.get_include()))
