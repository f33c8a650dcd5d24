"""Coarse-only LoFTR (Sun et al., CVPR 2021; the distilled student): network and export."""

from glue_ros.models.coarse_loftr.export import cached_onnx_export, export_onnx
from glue_ros.models.coarse_loftr.network import (
    CoarseLoFTR,
    cell_centers,
    default_conf,
    dual_softmax,
    loftr_outdoor_conf,
    select_matches,
    sine_positional_encoding,
)

__all__ = [
    'CoarseLoFTR',
    'cell_centers',
    'default_conf',
    'dual_softmax',
    'loftr_outdoor_conf',
    'select_matches',
    'sine_positional_encoding',
    'export_onnx',
    'cached_onnx_export',
]
