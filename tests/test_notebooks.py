"""The tutorial notebooks run top to bottom, at tiny sizes (``POLYOP_NB_SMALL=1``).

Each notebook checks its own results (every compiled kernel against numpy or
the kernel's Python body) with ``assert`` in its cells, so a wrong result
fails here as a cell error, as does any exception. The stored outputs are
the reader's; this run's outputs are discarded.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

pytest.importorskip("nbclient", reason="the docs extra (nbclient) runs the notebooks")


def _nbutil():
    spec = importlib.util.spec_from_file_location("_nbutil", NOTEBOOKS / "_nbutil.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


nbutil = _nbutil()
PATHS = nbutil.notebooks()


def test_the_notebooks_are_there():
    names = [p.stem for p in PATHS]
    for prefix in ("01_", "02_", "03_", "04_", "05_", "06_", "07_"):
        assert any(n.startswith(prefix) for n in names), f"no notebook {prefix}*: {names}"


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs(path: Path):
    nb = nbutil.execute(path, small=True, cell_timeout=120)
    errors = [out for cell in nb.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors, errors  # nbclient raises first; this guards allow_errors cells


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_is_stored_executed_and_clean(path: Path):
    """The docs render the stored outputs: every code cell has run, and no
    execution count or absolute path of the machine that ran it is left."""
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and c["source"]]
    assert code and all(c.get("outputs") for c in code if _prints(c)), \
        f"{path.name}: stored without outputs (python notebooks/_nbutil.py {path.stem})"
    assert all(c["execution_count"] is None for c in code), f"{path.name}: execution counts"
    text = path.read_text()
    assert str(NOTEBOOKS.parent) not in text, f"{path.name}: the checkout's path is stored"


def _prints(cell: dict) -> bool:
    """Whether a stored cell must have an output: its last line is a
    top-level ``print(`` or ``plt.show()`` (cells that only define have none)."""
    lines = [ln for ln in "".join(cell["source"]).splitlines() if ln.strip()]
    return bool(lines) and lines[-1].startswith(("print(", "plt.show("))


def test_clean_drops_counts_and_paths():
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    cell = nb.cells[0]
    cell.execution_count = 7
    cell.metadata["execution"] = {"iopub.status.busy": "2026-01-01"}
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                           text=f"{nbutil.ROOT}/polyop/x.py\n"),
                    nbformat.v4.new_output("execute_result", data={"text/plain": "1"},
                                           execution_count=7)]
    out = nbutil.clean(nb).cells[0]
    assert out.execution_count is None and "execution" not in out.metadata
    assert out.outputs[0]["text"] == "polyop/polyop/x.py\n"
    assert out.outputs[1]["execution_count"] is None
