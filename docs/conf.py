"""Sphinx configuration of polyop's documentation.

Build it with warnings as errors, as CI does::

    python -m pip install -e ".[docs]"
    sphinx-build -W -b html docs docs/_build/html

Pages are MyST markdown.  Pages with ``{code-cell}`` blocks are text notebooks
executed at build time, so the code they show runs against this checkout and
the output is real.  The notebooks of ``notebooks/`` (reached through the
``docs/notebooks`` symlink) are committed with their outputs and are rendered
as they are, not executed again.
"""

from __future__ import annotations

import sys
from pathlib import Path

# resolve(): the test builds a copy of this folder made of symlinks, and the
# repository is found through them
DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))

project = "polyop"
author = "the polyop developers"
copyright = "2026, the polyop developers"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "polyop_docs",
]

exclude_patterns = ["_build", "**/.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
html_theme = "alabaster"
html_title = "polyop"

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Execution: the text notebooks of docs/ (.md pages with code cells) run at
# every build; any .ipynb (the notebooks/ folder) is excluded by pattern and
# keeps the outputs it was committed with.  A failing cell fails the build.
nb_execution_mode = "force"
nb_execution_excludepatterns = ["*.ipynb"]
nb_execution_raise_on_error = True
nb_execution_timeout = 120
nb_merge_streams = True
# progress bars of tuning notebooks are widget outputs with a text fallback
suppress_warnings = ["mystnb.unknown_mime_type"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = True

# where the benchmark tables read their JSON (polyop_docs.BenchTable)
polyop_results_dir = str(ROOT / "benchmarks" / "results")
