# Newcomer entry points: `make demo` and `make test`. Both set up first when needed.
SHELL := /bin/bash
PYTHON ?= python3
# ROS 2 wheels of a distro: kilted (default) or jazzy; each gets its own .venv-*/install-*.
ROS_DISTRO_WHEELS ?= kilted
export ROS_DISTRO_WHEELS
# What `make test` runs (a file or folder of tests), and extra pytest flags.
TESTS ?= test
IN_ENV = source ./env.sh &&

.PHONY: setup test test-fast lint fmt typecheck demo bench gpu-check docs clean

setup:
	@PYTHON=$(PYTHON) bash scripts/setup.sh

test: setup
	@$(IN_ENV) python -m pytest $(TESTS) $(PYTEST_ARGS)

# The pure-Python subset: no ROS graph, nothing slow (under a minute).
test-fast: setup
	@$(IN_ENV) python -m pytest test -m "not ros and not slow" $(PYTEST_ARGS)

lint: setup
	@$(IN_ENV) python -m pytest test/test_lint.py

# Sort imports, apply the safe fixes and format (the checks test/test_lint.py makes).
fmt: setup
	@$(IN_ENV) ruff check --fix . && ruff format .

# mypy --strict on the ROS-free core, the front-end and the settings (pyproject.toml).
typecheck: setup
	@$(IN_ENV) mypy

demo: setup
	@$(IN_ENV) python -m glue_ros.tools.demo $(DEMO_ARGS)

bench: setup
	@$(IN_ENV) python -m glue_ros.tools.bench --compare --sweep --messages --slam $(BENCH_ARGS)

# On a machine with an NVIDIA GPU: the CUDA and TensorRT tests and the CUDA benchmark, one JSON.
gpu-check: setup
	@$(IN_ENV) python scripts/gpu_check.py $(GPU_CHECK_ARGS)

# docs/parameters.md from the settings schema (test/test_config.py checks it is up to date).
docs: setup
	@$(IN_ENV) python -m glue_ros.tools.docs

clean:
	rm -rf build build-jazzy install install-jazzy log log-jazzy demo_out bench_out
