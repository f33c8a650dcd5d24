"""glue_ros: learned feature matching (LightGlue, coarse LoFTR) for ROS 2 SLAM front-ends.

The pure-Python/PyTorch core (``glue_ros.core``, ``glue_ros.models``, ``glue_ros.backends``,
``glue_ros.tools``) imports no ROS. ``glue_ros.ros`` and the generated ``glue_ros.msg`` need a
ROS 2 environment (``source env.sh``).
"""

import pkgutil

# The rosidl-generated ``glue_ros.msg`` lives in the colcon install space while the sources may
# be imported from the work tree: let both directories serve the one package.
__path__ = pkgutil.extend_path(__path__, __name__)

__version__ = '0.1.0'
