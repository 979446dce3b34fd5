"""The documentation builds with warnings as errors, and shows what it should.

One Sphinx build (in a subprocess, into tmp_path) serves every check. Its
source is ``docs/`` seen through symlinks, with two additions that test the
build's own rules: a probe notebook committed with an output and a cell that
would fail if run (``.ipynb`` files are rendered, not executed), and an extra
top-level page (pages added later reach the index without editing it).
"""

from __future__ import annotations

import doctest
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RESULTS = ROOT / "benchmarks" / "results"

PROBE_OUTPUT = "output stored with the probe notebook"


class Site(NamedTuple):
    html: Path              # the built site
    notebooks: list[str]    # the notebooks of notebooks/ it was built with


def _ext():
    spec = importlib.util.spec_from_file_location("polyop_docs", DOCS / "_ext" / "polyop_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _probe_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Probe notebook"),
        nbformat.v4.new_code_cell(
            'raise RuntimeError("this cell must not run at build time")',
            outputs=[nbformat.v4.new_output("stream", name="stdout", text=PROBE_OUTPUT)]),
    ]
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    src = tmp_path_factory.mktemp("docs_src")
    for entry in DOCS.iterdir():
        if entry.name not in ("notebooks", "_build"):
            (src / entry.name).symlink_to(entry)
    notebooks = src / "notebooks"
    notebooks.mkdir()
    linked = sorted((ROOT / "notebooks").glob("*.ipynb"))
    for nb in linked:
        (notebooks / nb.name).symlink_to(nb)
    _probe_notebook(notebooks / "zz_probe.ipynb")
    (src / "zz-extra-page.md").write_text("# An extra page\n\nAdded after the index.\n")
    out = tmp_path_factory.mktemp("docs_html")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(src), str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "0"})
    assert proc.returncode == 0, \
        f"sphinx-build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    return Site(out, [nb.stem for nb in linked])


def _html(site: Site, page: str) -> str:
    path = site.html / f"{page}.html"
    assert path.is_file(), f"{page}.html was not built"
    return path.read_text()


def test_pages_and_concept_anchors(site: Site) -> None:
    for page in ("index", "concepts", "frontends", "kernel-language", "schedules", "targets",
                 "design", "performance", "api"):
        _html(site, page)
    concepts = _html(site, "concepts")
    for anchor in ("iteration-domain", "access-relation", "dependence", "schedule-tree",
                   "legality", "validation"):
        assert f'id="{anchor}"' in concepts, anchor


def test_code_cells_ran_at_build_time(site: Site) -> None:
    schedules = _html(site, "schedules")
    # outputs exist only if the cells ran: lowered loop nests and a refusal
    assert "i_outer" in schedules and "i_inner" in schedules
    assert "IllegalScheduleError:" in schedules
    assert "WAR dependence on A reversed" in schedules
    concepts = _html(site, "concepts")
    assert "RAW on B" in concepts


def test_notebooks_are_rendered_not_executed(site: Site) -> None:
    probe = _html(site, "notebooks/zz_probe")
    assert PROBE_OUTPUT in probe
    assert "must not run" in probe            # the cell's source is shown
    assert "Traceback" not in probe
    index = _html(site, "index")
    assert 'href="notebooks/zz_probe.html"' in index
    for stem in site.notebooks:
        assert f'href="notebooks/{stem}.html"' in index, stem


def test_pages_added_later_reach_the_index(site: Site) -> None:
    index = _html(site, "index")
    toctrees = "".join(re.findall(r'<div class="toctree-wrapper compound">(.*?)</div>',
                                  index, re.S))
    # each page is listed once, though the project pages also match the guide's glob
    for page in ("concepts", "schedules", "zz-extra-page", "design", "performance", "api"):
        assert toctrees.count(f'href="{page}.html"') == 1, page


def test_api_reference_from_docstrings(site: Site) -> None:
    api = _html(site, "api")
    for anchor in ("polyop.Schedule.split", "polyop.Schedule.parallel", "polyop.build",
                   "polyop.lower", "polyop.Target", "polyop.ops.matmul", "polyop.te.compute",
                   "polyop.IllegalScheduleError"):
        assert f'id="{anchor}"' in api, anchor
    # the pages' cross-references to the API resolve to it
    concepts = _html(site, "concepts")
    assert 'href="api.html#polyop.IllegalScheduleError"' in concepts


def test_benchmark_tables_come_from_the_result_files(site: Site) -> None:
    perf = re.sub(r"\s+", " ", _html(site, "performance"))
    matmul = json.loads((RESULTS / "matmul_cpu.json").read_text())
    assert matmul["machine"]["llvm_host_cpu"] in perf
    for r in matmul["results"]:
        assert f"<p>{r['gflops_cpu']['polyop']:.1f}</p>" in perf
    small = json.loads((RESULTS / "polybench_small.json").read_text())
    assert f"{small['geomean_speedup_polyop_vs_numba']:.2f}" in perf
    ext = _ext()
    for path in RESULTS.glob("*.json"):
        if path.name in ext.TABLES:
            assert f"benchmarks/results/{path.name}" in perf, path.name


def test_machine_text_doctest() -> None:
    result = doctest.testmod(_ext())
    assert result.attempted > 0 and result.failed == 0


def test_every_table_reads_its_file() -> None:
    ext = _ext()
    for name, table in ext.TABLES.items():
        path = RESULTS / name
        if not path.is_file():
            continue
        tables = table(json.loads(path.read_text()))
        assert tables, name
        for title, header, rows in tables:
            assert rows and all(len(row) == len(header) for row in rows), (name, title)
