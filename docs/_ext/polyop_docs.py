"""Sphinx directives of polyop's documentation.

``bench-table``
    A table of one benchmark result file of ``benchmarks/results/``, read at
    build time, preceded by the machine the numbers were measured on.  The
    pages never copy a number by hand, so they cannot drift from the files::

        ```{bench-table} matmul_cpu.json
        ```

``bench-others``
    A list of the result files that no table reads yet, with their machines,
    so that a new file is visible in the documentation before its table is
    written.

``auto-toctree``
    A toctree whose glob entries list the pages found at build time, leaving
    out the pages this toctree names explicitly and those of ``:exclude:``,
    and matching nothing without a warning.  Pages other authors add later
    (``docs/cli.md``, the notebooks) then appear without editing the index,
    and the build stays clean, under ``-W``, before they exist.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.directives.other import TocTree
from sphinx.util import docname_join
from sphinx.util.docutils import SphinxDirective
from sphinx.util.matching import patfilter
from sphinx.util.nodes import explicit_title_re

Row = list[str]
# a result file becomes (title, header, rows) tables
Tables = list[tuple[str, Row, list[Row]]]


def _f(x: float, digits: int = 1) -> str:
    return f"{x:.{digits}f}"


def machine_text(data: dict[str, Any]) -> str:
    """One line naming the machine and the date of a result file.

    >>> machine_text({"date": "2026-11-24T03:34", "machine": {"cpu_model": "AMD EPYC",
    ...     "llvm_host_cpu": "znver3", "cpus": "2", "blas": "scipy-openblas 0.3.31"}})
    'AMD EPYC (LLVM CPU znver3), 2 CPUs, BLAS scipy-openblas 0.3.31; measured 2026-11-24'
    """
    m = data.get("machine", {})
    parts = [str(m.get("cpu_model") or m.get("cpu") or "unknown CPU")]
    llvm = m.get("llvm_host_cpu") or m.get("llvm_cpu") or data.get("llvm_cpu")
    if llvm:
        parts[0] += f" (LLVM CPU {llvm})"
    cpus = m.get("cpus") or m.get("cpu_count")
    if cpus:
        parts.append(f"{cpus} CPUs")
    caches = m.get("caches")
    if caches:
        parts.append(", ".join(f"{k.replace(' cache', '')} {v.split(' (')[0]}"
                               for k, v in caches.items()))
    if m.get("blas"):
        parts.append(f"BLAS {m['blas']}")
    text = ", ".join(parts)
    if data.get("date"):
        text += f"; measured {str(data['date'])[:10]}"
    return text


def _matmul_cpu(d: dict[str, Any]) -> Tables:
    rows = [[str(r["n"]), _f(r["gflops_cpu"]["polyop"]), _f(r["gflops_cpu"]["numpy"]),
             _f(r["ratio_cpu"], 2), _f(r["percent_of_peak_cpu"], 0)] for r in d["results"]]
    k = d["kernel"]
    title = (f"Hand-written packed sgemm kernel ({k['mr']}x{k['nr']} tile, kc={k['kc']}), "
             f"1 thread; measured peak {_f(d['peak_gflops'])} GFLOP/s")
    return [(title, ["n", "polyop GFLOP/s", "numpy GFLOP/s", "ratio", "% of peak"], rows)]


def _parallel(d: dict[str, Any]) -> Tables:
    rows = [[k["kernel"], _f(1e3 * k["median_1"], 2), _f(1e3 * k["median_2"], 2),
             _f(k["speedup"], 2)] for k in d["kernels"]]
    mw = d["min_work_rule"]
    rows.append([f"{mw['kernel']}, minimum-work rule off",
                 _f(1e3 * mw["median"]["1 thread"], 3),
                 _f(1e3 * mw["median"]["2 threads, rule off"], 3),
                 _f(mw["speedup"]["2 threads, rule off"], 2)])
    rows.append([f"{mw['kernel']}, minimum-work rule on",
                 _f(1e3 * mw["median"]["1 thread"], 3),
                 _f(1e3 * mw["median"]["2 threads, rule on"], 3),
                 _f(mw["speedup"]["2 threads, rule on"], 2)])
    lo = d["launch_overhead"]
    title = (f"Schedule-level parallel loops, medians of {d['repeat']}; region launch "
             f"+{_f(lo['awake_us'], 2)} us with the workers awake, "
             f"+{_f(lo['asleep_us'], 1)} us asleep")
    return [(title, ["kernel", "1 thread (ms)", "2 threads (ms)", "speed-up"], rows)]


def _peers(d: dict[str, Any]) -> Tables:
    tables: Tables = []
    for run in d["runs"]:
        for workload, cases in run["workloads"].items():
            peers: list[str] = []
            for case in cases:
                peers += [p for p in case["peers"] if p not in peers]
            rows = []
            for case in cases:
                row = [case["case"]]
                for p in peers:
                    r = case["peers"].get(p)
                    ok = r is not None and r.get("status") == "ok"
                    row.append(_f(r["gflops"]) if ok else "-")
                rows.append(row)
            title = f"{workload}, {run['threads']} thread(s), GFLOP/s (median)"
            tables.append((title, ["case", *peers], rows))
    return tables


def _ops_before_after(d: dict[str, Any]) -> Tables:
    peers: list[str] = []
    for r in d["results"]:
        peers += [p for p in r["gflops"] if p not in peers]
    rows = []
    for r in d["results"]:
        what = (f"matmul n={r['n']}" if r["op"] == "matmul"
                else "conv2d {}->{} {}x{} {}x{} {}".format(*_layer(r["layer"])))
        g = r["gflops"]
        rows.append([what, str(r["threads"]), *(_f(g[p]) if p in g else "-" for p in peers)])
    title = (f"Explicit vectors for the register tile, before and after (GFLOP/s); "
             f"measured peak {_f(d['peak_fp32_per_core'])} GFLOP/s per core. {d.get('note', '')}")
    return [(title, ["case", "threads", *peers], rows)]


def _layer(layer: list[Any]) -> tuple[Any, ...]:
    c, hw, f, r, layout = layer
    return c, f, hw, hw, r, r, layout


def _polybench(d: dict[str, Any]) -> Tables:
    rows = [[r["kernel"], _f(1e3 * r["polyop_s"], 3), _f(1e3 * r["numba_s"], 3),
             _f(r["speedup"], 2), _f(r["polyop_compile_s"], 2),
             "yes" if r["match"] else "NO"] for r in d["results"]]
    title = (f"PolyBench {d['size']} sizes, 1 thread, medians of {d['repeat']}; geometric "
             f"mean speed-up over numba {_f(d['geomean_speedup_polyop_vs_numba'], 2)}")
    return [(title, ["kernel", "polyop (ms)", "numba (ms)", "speed-up", "polyop compile (s)",
                     "same result"], rows)]


def _autoschedule(d: dict[str, Any]) -> Tables:
    def two(r: dict[str, Any]) -> str:
        return _f(r["speedup_2_threads"], 2) if "speedup_2_threads" in r else "-"

    rows = [[r["kernel"], _f(r["auto_ms"], 3), _f(r["default_ms"], 3), _f(r["numba_ms"], 3),
             _f(r["speedup_vs_numba"], 2), _f(r["speedup_vs_default"], 2), two(r),
             "yes" if r["match"] else "NO"] for r in d["results"]]
    s = d["summary"]
    title = (f"auto_schedule, PolyBench {d['size']} sizes, medians of {d['repeat']} "
             f"({d.get('conditions', 'conditions not recorded')}); geometric means: "
             f"{_f(s['geomean_auto_vs_numba'], 2)}x over numba, "
             f"{_f(s['geomean_auto_vs_default'], 2)}x over the default schedule, 2 threads "
             f"{_f(s['geomean_2_threads_on_parallel_kernels'], 2)}x over 1 on kernels with "
             "a parallel loop")
    return [(title, ["kernel", "auto (ms)", "default (ms)", "numba (ms)", "vs numba",
                     "vs default", "2 threads / 1", "same result"], rows)]


def _validation_cost(d: dict[str, Any]) -> Tables:
    rows = [[r["kernel"], r["form"], _f(r["build_s"], 3), _f(r["validate_s"], 3),
             _f(100 * r["validate_s"] / r["build_s"], 0)] for r in d["rows"]]
    s = d["summary"]
    title = (f"Cost of the generated-code validation: median {_f(100 * s['median_share'], 0)} %"
             f" of a build, at most {_f(100 * s['max_share'], 0)} %")
    return [(title, ["kernel", "form", "build (s)", "validation (s)", "share (%)"], rows)]


TABLES: dict[str, Callable[[dict[str, Any]], Tables]] = {
    "matmul_cpu.json": _matmul_cpu,
    "parallel.json": _parallel,
    "peers_cpu.json": _peers,
    "peers_cpu_matmul_conv.json": _peers,
    "peers_cpu_matmul_znver4.json": _peers,
    "peers_cpu_conv_znver4.json": _peers,
    "ops_before_after.json": _ops_before_after,
    "polybench_small.json": _polybench,
    "polybench_medium.json": _polybench,
    "validation_cost.json": _validation_cost,
    "autoschedule_medium.json": _autoschedule,
    "autoschedule_medium_parallel.json": _autoschedule,
    "autoschedule_medium_znver4.json": _autoschedule,
    "autoschedule_medium_znver4_registers.json": _autoschedule,
    "autoschedule_medium_znver4_rounds.json": _autoschedule,
    "autoschedule_medium_znver4_expand.json": _autoschedule,
    "autoschedule_medium_znver4_distribute.json": _autoschedule,
    "autoschedule_medium_znver4_jam.json": _autoschedule,
    "autoschedule_medium_znver4_wavefront.json": _autoschedule,
    "autoschedule_rowwalk_znver4.json": _autoschedule,
    "autoschedule_autovec_znver4.json": _autoschedule,
    "autoschedule_loadpre_znver4.json": _autoschedule,
    "autoschedule_refill_znver4.json": _autoschedule,
    "autoschedule_warm_znver4.json": _autoschedule,
    "autoschedule_unrolled_znver5.json": _autoschedule,
    "autoschedule_nounroll_znver5.json": _autoschedule,
    "autoschedule_warm_znver5.json": _autoschedule,
}


def _table(header: Row, rows: list[Row]) -> nodes.table:
    table = nodes.table(classes=["bench-table"])
    group = nodes.tgroup(cols=len(header))
    table += group
    group += [nodes.colspec(colwidth=1) for _ in header]

    def row(cells: Row) -> nodes.row:
        r = nodes.row()
        for c in cells:
            r += nodes.entry("", nodes.paragraph(text=c))
        return r

    thead = nodes.thead()
    thead += row(header)
    tbody = nodes.tbody()
    tbody += [row(r) for r in rows]
    group += [thead, tbody]
    return table


class BenchTable(SphinxDirective):
    """``{bench-table} FILE.json``: the tables of one result file and its machine."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        path = Path(self.config.polyop_results_dir) / name
        if name not in TABLES:
            raise self.error(f"bench-table: no table is defined for {name!r} "
                             f"(known: {', '.join(sorted(TABLES))})")
        if not path.is_file():
            raise self.error(f"bench-table: {path} does not exist")
        self.env.note_dependency(str(path))
        data = json.loads(path.read_text())
        try:
            tables = TABLES[name](data)
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise self.error(f"bench-table: {name} does not have the fields its table reads "
                             f"({type(e).__name__}: {e}); update docs/_ext/polyop_docs.py") from e
        out: list[nodes.Node] = [nodes.paragraph(
            "", "", nodes.strong(text="Machine: "), nodes.Text(machine_text(data)),
            nodes.Text(" (from "), nodes.literal(text=f"benchmarks/results/{name}"),
            nodes.Text(")."))]
        for title, header, rows in tables:
            out.append(nodes.paragraph(text=title))
            out.append(_table(header, rows))
        return out


class BenchOthers(SphinxDirective):
    """``{bench-others}``: the result files no table is defined for, each with its machine."""

    def run(self) -> list[nodes.Node]:
        results = Path(self.config.polyop_results_dir)
        items = nodes.bullet_list()
        for path in sorted(results.glob("*.json")):
            if path.name in TABLES or path.name.endswith(".tmp.json"):
                continue
            self.env.note_dependency(str(path))
            data = json.loads(path.read_text())
            text = machine_text(data) if isinstance(data, dict) else "no machine recorded"
            items += nodes.list_item("", nodes.paragraph(
                "", "", nodes.literal(text=f"benchmarks/results/{path.name}"),
                nodes.Text(f": {text}.")))
        if not len(items):
            return [nodes.paragraph(text="Every result file has its table above.")]
        return [items]


class AutoTocTree(TocTree):
    """A toctree whose glob entries skip pages listed elsewhere and may match nothing."""

    option_spec = {**TocTree.option_spec, "exclude": directives.unchanged}

    def parse_content(self, toctree: Any) -> None:
        current = self.env.current_document.docname
        lines = [line.strip() for line in self.content if line.strip()]
        is_glob = [any(ch in line for ch in "*?[") and not explicit_title_re.match(line)
                   for line in lines]

        def target(line: str) -> str:
            m = explicit_title_re.match(line)
            return docname_join(current, m.group(2) if m else line)

        taken = {current, *(docname_join(current, d)
                            for d in self.options.get("exclude", "").split())}
        taken |= {target(line) for line, g in zip(lines, is_glob) if not g}
        entries = []
        for line, g in zip(lines, is_glob):
            if not g:
                entries.append(line)
                continue
            found = sorted(set(patfilter(self.env.found_docs, docname_join(current, line)))
                           - taken)
            taken |= set(found)
            # absolute names, so that a toctree in a subfolder lists them right
            entries += [f"/{doc}" for doc in found]
        self.content = entries  # type: ignore[assignment]
        toctree["glob"] = False
        super().parse_content(toctree)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("polyop_results_dir", "", "env")
    app.add_directive("bench-table", BenchTable)
    app.add_directive("bench-others", BenchOthers)
    app.add_directive("auto-toctree", AutoTocTree)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
