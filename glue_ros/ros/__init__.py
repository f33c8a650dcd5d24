"""The thin ROS 2 layer: node, message and image conversion."""
