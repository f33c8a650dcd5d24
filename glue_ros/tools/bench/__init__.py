"""glue-ros-bench: speed, memory and accuracy of the matching pipelines (see cli's docstring).

Modules: ``pipelines`` (the specs and the worker processes that run them), ``sweep`` (the
keypoint and image-size sweeps, the roofline), ``report`` (the machine, tables and ratios, the
message cost, the soak and live modes) and ``cli`` (the entry point, ``python -m
glue_ros.tools.bench``; its pipeline settings are the settings schema's flags).
"""

from glue_ros.tools.bench.cli import BENCH_SETTINGS, build_parser, main
from glue_ros.tools.bench.pipelines import COMPARISONS, DEFAULT, PIPELINES, build
from glue_ros.tools.bench.report import machine, message_cost, print_ratios, print_table
from glue_ros.tools.bench.sweep import print_roofline, roofline

__all__ = [
    'main',
    'build_parser',
    'BENCH_SETTINGS',
    'PIPELINES',
    'DEFAULT',
    'COMPARISONS',
    'build',
    'machine',
    'message_cost',
    'print_ratios',
    'print_table',
    'print_roofline',
    'roofline',
]
