"""The suite's guard against silent skips (tests/conftest.py) really fails a run that skips."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

SKIPPING_MODULE = """\
import pytest

pytest.importorskip("a_module_nobody_installed")


def test_never_runs():
    pass
"""

SKIPPING_TEST = """\
import pytest


def test_runs():
    pass


def test_skips():
    pytest.skip("no reason given")
"""

EXPLAINED_SKIP = """\
import pytest


def test_skipped_for_an_explained_reason():
    pytest.skip("the diffusers extra is not installed: pip install -e '.[test,diffusers]'")
"""


def run_suite(tmp_path: Path, source: str, **env: str) -> subprocess.CompletedProcess[str]:
    suite = tmp_path / "tests"
    suite.mkdir()
    shutil.copy(TESTS / "conftest.py", suite / "conftest.py")
    (suite / "__init__.py").write_text("")
    (suite / "test_example.py").write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={k: v for k, v in {**os.environ, **env}.items() if k != "LTX_ALLOW_SKIPS" or env},
        timeout=120,
    )


def test_a_module_that_skips_fails_the_run_naming_it(tmp_path: Path) -> None:
    run = run_suite(tmp_path, SKIPPING_MODULE)
    assert run.returncode == 1, run.stdout
    assert "unexplained skips" in run.stdout
    assert "test_example.py" in run.stdout and "a_module_nobody_installed" in run.stdout


def test_an_explained_skip_passes(tmp_path: Path) -> None:
    run = run_suite(tmp_path, EXPLAINED_SKIP)
    assert run.returncode == 0, run.stdout
    assert "1 skipped" in run.stdout and "unexplained" not in run.stdout


def test_a_developer_can_allow_skips_on_purpose(tmp_path: Path) -> None:
    run = run_suite(tmp_path, SKIPPING_TEST, LTX_ALLOW_SKIPS="1")
    assert run.returncode == 0, run.stdout
