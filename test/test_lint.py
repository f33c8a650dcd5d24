"""Linters as tests: flake8 at 99 columns, pep257 docstrings, mypy as pyproject.toml sets it."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ['glue_ros', 'test', 'launch', 'scripts', 'setup.py']


def run(tool, *args):
    return subprocess.run([sys.executable, '-m', tool, *args], cwd=ROOT, capture_output=True,
                          text=True)


def python_scripts():
    """Extension-less executables in scripts/ that are Python."""
    return [str(p.relative_to(ROOT)) for p in (ROOT / 'scripts').iterdir()
            if p.is_file() and not p.suffix and 'python' in p.read_text().split('\n')[0]]


def test_flake8():
    proc = run('flake8', '--max-line-length', '99', *SOURCES, *python_scripts())
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pep257():
    # Package and module code carry docstrings; tests are named for what they check.
    proc = run('pydocstyle', 'glue_ros', 'launch', 'scripts', 'setup.py')
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(importlib.util.find_spec('mypy') is None,
                    reason='mypy is not installed (requirements/test.txt)')
def test_mypy():
    # The files and the strictness are pyproject.toml's.
    proc = run('mypy')
    assert proc.returncode == 0, proc.stdout + proc.stderr
