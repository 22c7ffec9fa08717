"""The notebooks run top to bottom (so they cannot rot) and are committed without outputs."""

from __future__ import annotations

import os

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def execute(name: str, root) -> nbformat.NotebookNode:
    """Run a notebook as Jupyter would, from notebooks/, with PIPELINE_ROOT set to `root`."""
    notebook = nbformat.read(REPO / "notebooks" / name, as_version=4)
    previous = os.environ.get("PIPELINE_ROOT")
    os.environ["PIPELINE_ROOT"] = str(root)  # the kernel inherits this process's environment
    try:
        NotebookClient(notebook, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    finally:
        if previous is None:
            del os.environ["PIPELINE_ROOT"]
        else:
            os.environ["PIPELINE_ROOT"] = previous
    return notebook


def outputs(notebook: nbformat.NotebookNode, kind: str) -> list:
    return [o for cell in notebook.cells for o in cell.get("outputs", [])
            if kind in o.get("data", {}) or o.get("output_type") == kind]


def test_the_expected_notebooks_are_committed():
    assert {p.name for p in NOTEBOOKS} >= {"exploration.ipynb", "results.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: a cell has outputs; clear them"
            assert cell.execution_count is None, f"{path.name}: clear the execution counts"


@pytest.mark.slow
def test_exploration_runs_on_the_raw_data():
    notebook = execute("exploration.ipynb", REPO)
    assert len(outputs(notebook, "image/png")) >= 4
    assert not outputs(notebook, "error")


@pytest.mark.slow
def test_results_runs_on_a_dvc_repro_output(e2e_project):
    notebook = execute("results.ipynb", e2e_project)
    assert len(outputs(notebook, "image/png")) >= 4
    text = "".join(o.get("text", "") for o in outputs(notebook, "stream"))
    assert "models:/house-prices-mlp@champion is version" in text
