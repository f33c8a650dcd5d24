"""The ROS-free SLAM front-end: extract, match, verify geometry, keep tracks."""

from glue_ros.frontend.frontend import FrameOutput, Frontend, FrontendConfig

__all__ = ['Frontend', 'FrontendConfig', 'FrameOutput']
