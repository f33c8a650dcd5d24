"""The ROS-free core: data types, weights loading and the matcher API."""
