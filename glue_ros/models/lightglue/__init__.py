"""LightGlue (Lindenberger et al., ICCV 2023): network, attention, heads, assignment, export."""

from glue_ros.models.lightglue.assignment import assign_matches
from glue_ros.models.lightglue.checkpoint import canonical_state, infer_conf
from glue_ros.models.lightglue.export import LightGlueFullDepth, cached_onnx_export, export_onnx
from glue_ros.models.lightglue.network import LightGlue, normalize_keypoints

__all__ = [
    'LightGlue',
    'LightGlueFullDepth',
    'export_onnx',
    'cached_onnx_export',
    'normalize_keypoints',
    'assign_matches',
    'canonical_state',
    'infer_conf',
]
