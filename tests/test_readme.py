"""The README's examples run as written."""

import re
import subprocess
import sys

import pytest

from .conftest import REPO

pytestmark = pytest.mark.slow


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_from_python_example_runs_as_written():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## From Python", 1)[1].split("\n## ", 1)[0]
    (block,) = python_blocks(section)
    check = block + "\nassert len(prices) == len(test) and (prices > 0).all()\n" \
                    "assert len(scores) == 3 and 0 < -scores.mean() < 0.3\n"
    result = subprocess.run([sys.executable, "-c", check], cwd=REPO, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
