"""notebooks/quickstart.ipynb runs top to bottom without an error (nbclient, a kernel on this very
Python), and is committed with its outputs stripped.

The kernel is a kernelspec written into a temporary folder on JUPYTER_PATH, pointing at
sys.executable: nothing installed by hand is needed (a fresh `make setup` venv works), and no
user-level `python3` kernelspec can send the notebook to another interpreter. The notebook's run
directory goes to a temporary folder (QUICKSTART_RUN_DIR), not the checkout's runs/.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"
KERNEL = "teachgraph-test-python"
CELL_TIMEOUT = 600  # seconds per cell (the first run builds the notebook's base student, ~1 min)


def test_notebook_is_committed_without_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(not c.outputs and c.execution_count is None for c in code), \
        "strip the outputs: jupyter nbconvert --clear-output --inplace notebooks/quickstart.ipynb"


def test_quickstart_runs_without_errors(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "teachgraph test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("QUICKSTART_RUN_DIR", str(tmp_path / "quickstart"))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel picks the inline backend, as for a user

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=CELL_TIMEOUT, allow_errors=False,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError (with the cell and its traceback) on any error

    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                     if o.get("output_type") == "stream")
    assert "best cycle" in text and "replayed: best cycle" in text
    run = tmp_path / "quickstart"
    assert (run / "summary.json").exists()
    assert (run / "report" / "report.md").exists() and (run / "report" / "skill_tree.png").exists()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_val_accuracy"] > summary["cycles"][0]["val_accuracy"], "the student should learn"
