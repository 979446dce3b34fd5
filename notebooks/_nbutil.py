"""Execute the tutorial notebooks and store them with their outputs.

The notebooks read ``POLYOP_NB_SMALL``: ``1`` runs them at tiny sizes (CI,
``tests/test_notebooks.py``), unset gives a reader's sizes. The docs render
the stored outputs and do not execute anything, so after editing a notebook,
store it executed::

    python notebooks/_nbutil.py                 # every notebook, reader's sizes
    python notebooks/_nbutil.py 03_gemm_cpu     # one of them
    python notebooks/_nbutil.py --small         # tiny sizes

``clean`` drops what changes from run to run without telling the reader
anything (execution counts, timing metadata) and the checkout's absolute path.
polyop itself never imports this module.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def notebooks() -> list[Path]:
    """The tutorial notebooks, in reading order (``NN_name.ipynb``)."""
    return sorted(p for p in HERE.glob("[0-9][0-9]_*.ipynb"))


def execute(path: Path, small: bool, cell_timeout: int = 300) -> nbformat.NotebookNode:
    """Run ``path`` top to bottom in a fresh python3 kernel (working directory
    ``notebooks/``); a cell's error raises ``nbclient.exceptions.CellExecutionError``
    naming the cell and the traceback."""
    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    if small:
        env["POLYOP_NB_SMALL"] = "1"
    else:
        env.pop("POLYOP_NB_SMALL", None)
    # the notebook imports polyop, benchmarks/ and tests/ of this checkout
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(HERE)}})
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the kernel process inherits this environment
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop execution counts and timing metadata, and write the checkout's
    path as ``polyop/`` in text outputs, so that a re-run changes the file
    only where the results changed."""
    root = str(ROOT)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.execution_count = None
        cell.metadata.pop("execution", None)
        for out in cell.get("outputs", []):
            if "execution_count" in out:
                out["execution_count"] = None
            if "text" in out:
                out["text"] = out["text"].replace(root, "polyop")
            for mime in ("text/plain", "text/html"):
                data = out.get("data", {})
                if isinstance(data.get(mime), str):
                    data[mime] = data[mime].replace(root, "polyop")
    return nb


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="execute the notebooks and store their outputs")
    ap.add_argument("names", nargs="*", help="notebook names (default: all)")
    ap.add_argument("--small", action="store_true", help="tiny sizes (POLYOP_NB_SMALL=1)")
    opts = ap.parse_args(argv)
    paths = [p for p in notebooks() if not opts.names or p.stem in opts.names]
    for p in paths:
        print(f"executing {p.name} ...", flush=True)
        nbformat.write(clean(execute(p, opts.small)), p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
