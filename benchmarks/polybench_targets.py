"""PolyBench/C 4.2.1 with no schedule, compiled for two targets of this host.

The question (issue "Targets", on AVX-512 hosts): loops that no schedule marks
``vectorize`` are left to LLVM's loop vectorizer; given AVX-512 it may pick
512-bit vectors, gathers and scatters where AVX2 code would not. This runs
every kernel of ``tests.polybench.BENCHES`` compiled in its own loop order
(``polyop.build(kernel, target=T)``) for each ``--targets`` entry (default:
the host, and the host without AVX-512), interleaved (one call of each per
round, on fresh copies of the inputs), checks that the targets' outputs agree
with numba's, and reports per kernel the median times, their ratio (first
target's time over each other's), and the gather and scatter instructions in
each target's assembly.

Run::

    python benchmarks/polybench_targets.py [--size MEDIUM] [--repeat 7]
    python benchmarks/polybench_targets.py --targets "cpu" "cpu -mattr=-avx512f,-avx512bw"

Results: ``benchmarks/results/polybench_targets_<cpu>.json`` with the machine.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import re
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
from tests.polybench import BENCHES  # noqa: E402

#: x86 gathers and scatters (AVX2's vgatherdps/vpgatherdd, AVX-512's vscatter…)
GATHER = re.compile(r"^\s+v(?:p?gather|p?scatter)\w*", re.M)


def bench_one(bench, size: str, targets: list[str], repeat: int) -> dict:
    import numba

    sizes = bench.sizes[size]
    args = bench.init(sizes)
    order = list(inspect.signature(bench.kernel.py_func).parameters)
    fns = {t: polyop.build(polyop.kernel(bench.kernel.py_func), target=t) for t in targets}
    nb = numba.njit(bench.kernel.py_func)
    _, want = pb.timed_call(nb, args, order)
    res: dict = {"kernel": bench.name, "sizes": sizes,
                 "gathers": {t: len(GATHER.findall(f.asm)) for t, f in fns.items()}}
    times: dict[str, list[float]] = {t: [] for t in targets}
    outs: dict[str, dict] = {}
    for _ in range(repeat):
        for t, f in fns.items():
            s, outs[t] = pb.timed_call(f, args, order)
            times[t].append(s)
    res["match"] = bool(all(np.allclose(outs[t][o], want[o], rtol=pb.RTOL, atol=pb.ATOL,
                                        equal_nan=True)
                            for t in targets for o in bench.outputs))
    res["ms"] = {t: 1e3 * statistics.median(v) for t, v in times.items()}
    res["times_s"] = times
    first = res["ms"][targets[0]]
    res["ratio"] = {t: res["ms"][t] / first for t in targets[1:]}  # > 1: the first is faster
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="MEDIUM", choices=pb.SIZES)
    ap.add_argument("--kernels", default="", help="comma-separated (default: all)")
    ap.add_argument("--targets", nargs="+", default=["cpu", "cpu -mattr=-avx512f"])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--json", default=None)
    opts = ap.parse_args(argv)
    targets = [str(polyop.Target(t)) for t in opts.targets]
    for t in targets:
        if not polyop.Target(t).is_host:
            raise SystemExit(f"{t}: not runnable on this host")
    names = [k for k in opts.kernels.split(",") if k] or list(BENCHES)
    machine = hostinfo.describe()
    machine.pop("lscpu", None)
    facts = {t: polyop.Target(t).vector_bits for t in targets}
    print(f"CPU {machine.get('cpu_model')} (LLVM {machine.get('llvm_cpu')}); targets: "
          + "; ".join(f"{t} ({b}-bit vectors)" for t, b in facts.items()))
    pb.warm_up()
    rows = []
    for name in names:
        r = bench_one(BENCHES[name], opts.size, targets, opts.repeat)
        rows.append(r)
        print(f"{name:16s} " + "  ".join(f"{r['ms'][t]:9.3f} ms ({r['gathers'][t]} g/s)"
                                          for t in targets)
              + "  " + "  ".join(f"x{v:.2f}" for v in r["ratio"].values())
              + ("" if r["match"] else "  MISMATCH"), flush=True)
    geo = {t: math.exp(statistics.mean(math.log(r["ratio"][t]) for r in rows))
           for t in targets[1:]}
    slower = {t: sorted(r["kernel"] for r in rows if r["ratio"][t] < 0.95) for t in targets[1:]}
    for t in targets[1:]:
        print(f"geometric mean of ({t}) time / ({targets[0]}) time: {geo[t]:.3f}; "
              f"{targets[0]} more than 5 % slower on: {', '.join(slower[t]) or 'none'}")
    out = Path(opts.json or ROOT / "benchmarks" / "results" /
               f"polybench_targets_{machine.get('llvm_cpu', 'host')}.json")
    out.write_text(json.dumps({
        "benchmark": "polybench_targets.py: PolyBench with no schedule, per target",
        "size": opts.size, "repeat": opts.repeat, "targets": targets, "vector_bits": facts,
        "machine": machine, "load": hostinfo.loadavg(), "geomean_ratio": geo,
        "first_target_more_than_5pct_slower": slower,
        "all_match": all(r["match"] for r in rows), "results": rows}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0 if all(r["match"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
