"""Linters as tests, with the settings of pyproject.toml: ruff's checks (pycodestyle, pyflakes,
import order, pep257 docstrings, bugbear, pyupgrade), ruff's formatting and mypy.

`make fmt` applies ruff's fixes and formatting; `make typecheck` runs mypy alone.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(tool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, '-m', tool, *args], cwd=ROOT, capture_output=True, text=True
    )


def test_ruff_check():
    proc = run('ruff', 'check', '--no-cache', '--output-format', 'concise', '.')
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format():
    proc = run('ruff', 'format', '--no-cache', '--check', '.')
    assert proc.returncode == 0, proc.stdout + proc.stderr + '\n(run `make fmt`)'


def test_extensionless_scripts_are_checked_too():
    """The entry points in scripts/ have no .py suffix: ruff must still read them."""
    proc = run('ruff', 'check', '--no-cache', '--show-files', '.')
    listed = {Path(line.strip()).name for line in proc.stdout.splitlines()}
    scripts = [
        p.name
        for p in (ROOT / 'scripts').iterdir()
        if p.is_file() and not p.suffix and 'python' in p.read_text().split('\n')[0]
    ]
    assert scripts and set(scripts) <= listed, set(scripts) - listed


@pytest.mark.skipif(
    importlib.util.find_spec('mypy') is None,
    reason='mypy is not installed (requirements/test.txt)',
)
def test_mypy():
    # The files and the strictness are pyproject.toml's.
    proc = run('mypy')
    assert proc.returncode == 0, proc.stdout + proc.stderr
