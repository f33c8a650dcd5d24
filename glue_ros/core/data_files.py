"""Data files the project uses but does not ship (licence, size), found one documented way.

They live in one folder, ``$GLUE_ROS_SHARED``, by default the user's cache
(``$XDG_CACHE_HOME/glue_ros``, i.e. ``~/.cache/glue_ros``). ``env.sh`` of a source checkout
points ``$GLUE_ROS_SHARED`` at ``../shared`` when that folder exists. The layout:

    weights/coarse_loftr/LoFTR_teacher.pt     coarse LoFTR student (Kolkir/Coarse_LoFTR_TRT,
                                              weights/LoFTR_teacher.pt, Apache-2.0)
    reference/coarse_loftr_student_motorcycle_640x480.npz
                                              the original implementation's output on the
                                              Middlebury pair (see reference/README.md there)

Tests that need a missing file skip with :func:`missing_reason`, which says what to get from
where; the benchmark leaves out the pipelines that need it.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = 'GLUE_ROS_SHARED'
COARSE_LOFTR_WEIGHTS = 'weights/coarse_loftr/LoFTR_teacher.pt'
COARSE_LOFTR_REFERENCE = 'reference/coarse_loftr_student_motorcycle_640x480.npz'
SOURCES = {
    COARSE_LOFTR_WEIGHTS: 'weights/LoFTR_teacher.pt of https://github.com/Kolkir/Coarse_LoFTR_TRT',
    COARSE_LOFTR_REFERENCE: 'conf_matrix of the original Coarse_LoFTR_TRT code on '
    'skimage.data.stereo_motorcycle() (keys image0, image1, conf_matrix)',
}


def shared_dir() -> Path:
    """The data folder: $GLUE_ROS_SHARED, else the user's cache (never a path beside the code)."""
    value = os.environ.get(ENV)
    if value:
        return Path(value).expanduser()
    cache = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(cache).expanduser() / 'glue_ros'


def data_file(relative: str) -> Path:
    """Path of a data file (it may not exist: check, or use missing_reason)."""
    return shared_dir() / relative


def missing_reason(relative: str) -> str:
    """Why a file is not usable, and how to get it; '' when it is there."""
    path = data_file(relative)
    if path.is_file():
        return ''
    return (
        f'{path} not found: get {SOURCES.get(relative, relative)} and put it at '
        f'<folder>/{relative}, with {ENV}=<folder> (default: {shared_dir()})'
    )
