"""Team regions against a fork per parallel loop, on PolyBench kernels whose
parallel loops sit inside a serial loop (stencils' time loop, the ``k`` of
gramschmidt and lu, adi's time loop).

Each kernel is auto-scheduled once (``polyop.auto_schedule``, MEDIUM sizes)
and built twice from the same schedule: ``before`` with team regions off
(``polyop.codegen.region.set_team_regions(False)``: each parallel loop forks
and joins the pool) and ``after`` with them on (one region around the serial
loop, a barrier per parallel loop). The four variants (before/after at 1 and
2 threads) run interleaved, ``--repeat`` times each on fresh copies of the
init arguments; the table gives medians and the 2-thread/1-thread ratios.
Outputs of every variant are checked against numba's run of the same Python
function (``rtol=1e-9, atol=1e-12``); team regions per call at 2 threads are
counted with ``team_regions()``.

Usage::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/parallel_region_bench.py \
        --kernels jacobi-2d,heat-3d --repeat 9 --json benchmarks/results/parallel_region.json

With ``--json`` an existing file is extended: kernels measured again replace
their old entry, so that a sweep can be split into several short runs.
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import json
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import hostinfo  # noqa: E402
import polybench_bench as pb  # noqa: E402

import polyop  # noqa: E402
from polyop.codegen.parallel import set_num_threads, team_regions  # noqa: E402
from polyop.codegen.region import use_team_regions  # noqa: E402
from tests.polybench import BENCHES  # noqa: E402

KERNELS = ("jacobi-1d", "jacobi-2d", "heat-3d", "fdtd-2d", "gramschmidt", "lu", "adi")


def _build(sch, regions: bool):
    with use_team_regions(regions):
        return polyop.build(sch)


def bench_one(name: str, size: str, repeat: int) -> dict:
    import numba

    bench = BENCHES[name]
    sizes = bench.sizes[size]
    args = bench.init(sizes)
    order = list(inspect.signature(bench.kernel.py_func).parameters)
    sch = polyop.auto_schedule(bench.kernel, "cpu", sizes=sizes)
    fns = {"before": _build(sch, False), "after": _build(sch, True)}
    ref = pb.timed_call(numba.njit(bench.kernel.py_func), args, order)[1]
    res: dict = {"kernel": name, "sizes": sizes, "schedule": str(sch).splitlines()[1:]}
    times: dict[str, list[float]] = {}
    match = True
    for _ in range(repeat):
        for threads in (1, 2):
            set_num_threads(threads)
            for label, fn in fns.items():
                t, out = pb.timed_call(fn, args, order)
                times.setdefault(f"{label}_{threads}t", []).append(t)
                match = match and all(np.allclose(out[o], ref[o], rtol=pb.RTOL, atol=pb.ATOL,
                                                  equal_nan=True) for o in bench.outputs)
    set_num_threads(2)
    for label, fn in fns.items():
        r0 = team_regions()
        pb.timed_call(fn, args, order)
        res[f"{label}_regions_per_call_2t"] = team_regions() - r0
    set_num_threads(1)
    res["match"] = bool(match)
    for key, ts in times.items():
        res[f"{key}_ms"] = 1e3 * statistics.median(ts)
        res[f"{key}_times_s"] = ts
    for label in fns:
        res[f"{label}_2t_over_1t"] = res[f"{label}_1t_ms"] / res[f"{label}_2t_ms"]
    res["after_over_before_1t"] = res["before_1t_ms"] / res["after_1t_ms"]
    res["after_over_before_2t"] = res["before_2t_ms"] / res["after_2t_ms"]
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="MEDIUM", choices=pb.SIZES)
    ap.add_argument("--kernels", default=",".join(KERNELS))
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--json", default=None)
    ap.add_argument("--conditions", default="not recorded")
    a = ap.parse_args(argv)
    pb.warm_up()
    out: dict = {"benchmark": __doc__.splitlines()[0], "size": a.size, "repeat": a.repeat,
                 "method": "before (fork per parallel loop) and after (one team region) built "
                           "from one auto_schedule, at 1 and 2 threads, interleaved; medians",
                 "results": []}
    path = Path(a.json) if a.json else None
    if path is not None and path.exists():
        out = json.loads(path.read_text())
    names = [k for k in a.kernels.split(",") if k]
    print(f"{'kernel':<12} {'before 1t':>9} {'2t':>8} {'2t/1t':>6} | {'after 1t':>9} {'2t':>8} "
          f"{'2t/1t':>6} | {'1t a/b':>6} regions b/a  match")
    for name in names:
        r = bench_one(name, a.size, a.repeat)
        out["results"] = [x for x in out["results"] if x["kernel"] != name] + [r]
        print(f"{name:<12} {r['before_1t_ms']:9.3f} {r['before_2t_ms']:8.3f} "
              f"{r['before_2t_over_1t']:6.2f} | {r['after_1t_ms']:9.3f} {r['after_2t_ms']:8.3f} "
              f"{r['after_2t_over_1t']:6.2f} | {r['after_over_before_1t']:6.2f} "
              f"{r['before_regions_per_call_2t']:>4}/{r['after_regions_per_call_2t']:<4} "
              f"{r['match']}", flush=True)
    if path is not None:
        out["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        out["conditions"] = a.conditions
        out["machine"] = hostinfo.describe()
        out["target_resolved"] = str(polyop.Target("cpu"))
        path.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
