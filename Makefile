# Newcomer entry points: `make demo` and `make test`. Both set up first when needed.
SHELL := /bin/bash
PYTHON ?= python3
IN_ENV = source ./env.sh &&

.PHONY: setup test lint demo bench clean

setup:
	@PYTHON=$(PYTHON) bash scripts/setup.sh

test: setup
	@$(IN_ENV) python -m pytest test $(PYTEST_ARGS)

lint: setup
	@$(IN_ENV) python -m pytest test/test_lint.py

demo: setup
	@$(IN_ENV) python -m glue_ros.tools.demo $(DEMO_ARGS)

bench: setup
	@$(IN_ENV) python -m glue_ros.tools.bench --compare --sweep --messages --slam $(BENCH_ARGS)

clean:
	rm -rf build install log demo_out bench_out
