"""What the validation of generated code costs (``polyop.validate``).

Builds every PolyBench kernel (no schedule, and a tiled schedule of its first
perfect 2-deep nest where one is legal) and ``polyop.ops.matmul`` at 1 and 2
threads, timing the whole build (model, dependences, schedule, AST, LLVM, JIT)
and, inside it, the time spent in ``validate_ast``. Each build runs on a
fresh kernel object, so nothing is cached between them.

Usage::

    python benchmarks/validation_cost.py [--out benchmarks/results/validation_cost.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import hostinfo  # noqa: E402

import polyop  # noqa: E402
import polyop.pipeline as pipeline  # noqa: E402
from tests.polybench import BENCHES  # noqa: E402

_spent = [0.0]
_validate = pipeline.validate_ast


def _timed_validate(*args, **kwargs):
    t0 = time.perf_counter()
    try:
        return _validate(*args, **kwargs)
    finally:
        _spent[0] += time.perf_counter() - t0


def measure(build) -> tuple[float, float]:
    """(build seconds, of which validation seconds) for ``build()``."""
    _spent[0] = 0.0
    t0 = time.perf_counter()
    build()
    return time.perf_counter() - t0, _spent[0]


def tiled(kernel):
    """A schedule of ``kernel`` with its first two nested loops tiled 8 × 8
    (``None`` when that is illegal or there is no such nest)."""
    sch = polyop.Schedule(kernel)
    for stmt in sch.stmts:
        loops = sch.get_loops(stmt)
        if len(loops) >= 2:
            try:
                sch.tile(loops[0], loops[1], 8, 8)
                return sch
            except polyop.ScheduleError:
                return None
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path)
    opts = ap.parse_args()
    pipeline.validate_ast = _timed_validate
    rows = []
    for name, bench in BENCHES.items():
        for form in ("original", "tiled"):
            kernel = polyop.kernel(bench.kernel.py_func)
            sch = kernel if form == "original" else tiled(kernel)
            if sch is None:
                continue
            total, valid = measure(lambda s=sch: polyop.build(s))
            rows.append(dict(kernel=name, form=form, build_s=total, validate_s=valid))
            print(f"{name:16s} {form:8s} build {total:6.3f} s  validate {valid:6.3f} s "
                  f"({100 * valid / total:4.1f} %)", flush=True)
    for threads in (1, 2):
        for n in (512, 1024):
            total, valid = measure(lambda n=n, t=threads: polyop.ops.matmul(n, n, n, threads=t))
            rows.append(dict(kernel=f"ops.matmul {n}", form=f"{threads} thread(s)",
                             build_s=total, validate_s=valid))
            print(f"ops.matmul {n:5d} {threads} thr  build {total:6.3f} s  validate {valid:6.3f} s "
                  f"({100 * valid / total:4.1f} %)", flush=True)
    shares = [r["validate_s"] / r["build_s"] for r in rows]
    summary = dict(median_share=statistics.median(shares), max_share=max(shares),
                   total_build_s=sum(r["build_s"] for r in rows),
                   total_validate_s=sum(r["validate_s"] for r in rows))
    print(f"validation: median {100 * summary['median_share']:.1f} % of a build, "
          f"max {100 * summary['max_share']:.1f} %, in all {summary['total_validate_s']:.2f} "
          f"of {summary['total_build_s']:.2f} s")
    if opts.out:
        opts.out.write_text(json.dumps(dict(machine=hostinfo.describe(), rows=rows,
                                            summary=summary), indent=1))


if __name__ == "__main__":
    main()
