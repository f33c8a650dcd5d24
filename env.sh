# Source this file (`source env.sh`) for a shell where glue_ros runs, like a ROS setup.bash:
# the project's .venv, the ROS 2 underlay (the sourced system ROS 2, or the PyPI wheels in
# .venv), the colcon install space with glue_ros.msg, and the work tree's sources first.
# ROS_DISTRO_WHEELS=jazzy selects the environment 'make setup ROS_DISTRO_WHEELS=jazzy' made.
_glue_ros_root=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)
case "${ROS_DISTRO_WHEELS:-kilted}" in
  kilted) _glue_ros_suffix='' ;;
  jazzy) _glue_ros_suffix='-jazzy' ;;
  *) echo "glue_ros: ROS_DISTRO_WHEELS=${ROS_DISTRO_WHEELS} is not supported: kilted or jazzy" >&2
     unset _glue_ros_root _glue_ros_suffix
     return 1 2>/dev/null || exit 1 ;;
esac
if [ ! -x "$_glue_ros_root/.venv$_glue_ros_suffix/bin/python" ] || \
   [ ! -f "$_glue_ros_root/install$_glue_ros_suffix/setup.sh" ]; then
  echo "glue_ros: not set up yet; run 'make setup${_glue_ros_suffix:+ ROS_DISTRO_WHEELS=jazzy}'" \
    "in $_glue_ros_root first" >&2
  unset _glue_ros_root _glue_ros_suffix
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
. "$_glue_ros_root/.venv$_glue_ros_suffix/bin/activate"
if [ -z "${ROS_DISTRO:-}" ]; then
  # No system ROS 2: the wheels in .venv are the underlay.
  export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
fi
# colcon's setup.sh wants its own prefix variable; it adds AMENT_PREFIX_PATH, PYTHONPATH, ...
COLCON_CURRENT_PREFIX="$_glue_ros_root/install$_glue_ros_suffix"
# shellcheck disable=SC1091
. "$_glue_ros_root/install$_glue_ros_suffix/setup.sh"
unset COLCON_CURRENT_PREFIX
# Sources first: edits take effect without a rebuild; glue_ros.msg still comes from install/.
export PYTHONPATH="$_glue_ros_root${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$_glue_ros_root/install$_glue_ros_suffix/glue_ros/lib/glue_ros:$PATH"
# Full-size images through shared memory (see the file); the user's own profile wins. Fast DDS
# 3.x (Kilted and later: package fastdds) reads FASTDDS_DEFAULT_PROFILES_FILE, 2.x (Humble,
# Jazzy: package fastrtps) FASTRTPS_DEFAULT_PROFILES_FILE and 3.x warns when that one is set:
# set the one the underlay's Fast DDS reads.
_glue_ros_profile="${FASTDDS_DEFAULT_PROFILES_FILE:-${FASTRTPS_DEFAULT_PROFILES_FILE:-$_glue_ros_root/config/fastdds_large_images.xml}}"
_glue_ros_fastdds2=0
for _glue_ros_prefix in $(echo "${AMENT_PREFIX_PATH:-}" | tr ':' ' '); do
  if [ -d "$_glue_ros_prefix/share/fastrtps" ]; then _glue_ros_fastdds2=1; break; fi
  if [ -d "$_glue_ros_prefix/share/fastdds" ]; then break; fi
done
if [ "$_glue_ros_fastdds2" = 1 ]; then
  export FASTRTPS_DEFAULT_PROFILES_FILE="$_glue_ros_profile"
else
  export FASTDDS_DEFAULT_PROFILES_FILE="$_glue_ros_profile"
fi
unset _glue_ros_profile _glue_ros_fastdds2 _glue_ros_prefix
# Data the project does not ship (weights, reference outputs): a checkout's ../shared folder,
# unless the user named another one (the library's default is the user's cache).
if [ -z "${GLUE_ROS_SHARED:-}" ] && [ -d "$_glue_ros_root/../shared" ]; then
  GLUE_ROS_SHARED=$(cd "$_glue_ros_root/../shared" && pwd)
  export GLUE_ROS_SHARED
fi
# Keep DDS traffic of tests and demos on this machine unless the user chose otherwise.
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
unset _glue_ros_root _glue_ros_suffix
