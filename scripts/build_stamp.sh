#!/usr/bin/env bash
# Prints a hash of everything `colcon build` installs from the tree given as $1 (default: the
# current folder): the package files, messages, launch, config, scripts and the Python sources
# (colcon installs a copy of them, so a changed .py must rebuild install/).
set -uo pipefail
cd "${1:-.}" || exit 1
( cat package.xml CMakeLists.txt setup.py msg/*.msg srv/*.srv
  ls -lR scripts launch config; cat launch/* config/* scripts/*
  find glue_ros -name '*.py' | LC_ALL=C sort
  find glue_ros -name '*.py' -print0 | LC_ALL=C sort -z | xargs -0 cat ) 2>/dev/null \
  | sha256sum | cut -c1-16
