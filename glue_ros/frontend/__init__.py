"""The ROS-free SLAM front-end: extract, match, verify geometry, keep tracks."""
