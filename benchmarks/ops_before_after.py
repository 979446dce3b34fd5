"""polyop.ops.matmul / conv2d of this checkout against another checkout (the
commit before a change: ``git worktree add /tmp/old <commit>``) and numpy,
interleaved in one run.

Each side runs in its own process (its own ``polyop`` import), kept alive
across the run, so that the operators compile once; the parent asks each
process in turn (the order alternating per round) to time a case: the best
of ``--reps`` calls, wall clock. A case's figure is the median over
``--rounds`` rounds, GFLOP/s, and the share of ``peak_fma``'s measured peak
(times the threads). numpy's OpenBLAS runs at the same thread count
(threadpoolctl); run the script with ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` unset (``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE``)
so that OpenBLAS picks its best kernel for this CPU: the kernel it runs is
printed and recorded. The JSON file records the CPU model and LLVM's CPU name.

Usage::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        python benchmarks/ops_before_after.py --baseline /tmp/old
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MATMUL_SIZES = (512, 1000, 1024, 2048)
#: ResNet-50 layers (C, H, F, R, layout): 1x1 and 3x3
CONV_LAYERS = ((64, 56, 256, 1, "NCHW"), (256, 56, 64, 1, "NCHW"), (1024, 14, 256, 1, "NHWC"),
               (64, 56, 64, 3, "NCHW"), (128, 28, 128, 3, "NHWC"), (256, 14, 256, 3, "NCHW"))


def worker(tree: str) -> None:
    """Serve timing requests (one JSON line each) with ``polyop`` from ``tree``
    (``numpy``: numpy's own operators)."""
    import numpy as np
    if tree != "numpy":
        sys.path.insert(0, tree)
        import polyop
        assert polyop.__file__.startswith(tree), polyop.__file__
    from threadpoolctl import threadpool_limits
    rng = np.random.default_rng(0)
    built = {}
    for line in sys.stdin:
        case = json.loads(line)
        key = json.dumps(case, sort_keys=True)
        if key not in built:
            th = case["threads"]
            if case["op"] == "matmul":
                n = case["n"]
                a, b = (rng.random((n, n), dtype=np.float32) for _ in range(2))
                c = np.empty((n, n), np.float32)
                args = (a, b, c)
                if tree == "numpy":
                    def op(a, b, c, th=th):
                        with threadpool_limits(th):
                            np.matmul(a, b, out=c)
                else:
                    op = polyop.ops.matmul(n, n, n, threads=th)
                    op(*args)
                    assert np.allclose(c, a @ b, rtol=1e-3, atol=1e-3 * n)
            else:
                C, H, F, R, layout = case["layer"]
                op = polyop.ops.conv2d(C, H, H, F, R, layout=layout, threads=th)
                args = tuple(np.ascontiguousarray(rng.random(s, dtype=np.float32))
                             for s in op.shape.arrays().values())
                op(*args)
            built[key] = (op, args)
        op, args = built[key]
        best = float("inf")
        for _ in range(case["reps"]):
            t0 = time.perf_counter()
            op(*args)
            best = min(best, time.perf_counter() - t0)
        print(json.dumps({"seconds": best}), flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="a checkout of the commit before")
    ap.add_argument("--after", default=str(ROOT), help="the checkout measured (default this one)")
    ap.add_argument("--sizes", default=",".join(map(str, MATMUL_SIZES)))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--conv", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results"
                                          / "ops_before_after.json"))
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    opts = ap.parse_args(argv)
    if opts.worker:
        worker(opts.worker)
        return 0
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import hostinfo
    import llvmlite.binding as llvm
    import numpy as np  # noqa: F401  (threadpool_info needs OpenBLAS loaded)
    import peak_fma
    from threadpoolctl import threadpool_info
    blas = [{k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for d in threadpool_info()]
    env = {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    peak = peak_fma.peak("float32")
    cpu = hostinfo.describe()["cpu_model"]
    print(f"CPU {cpu}, LLVM CPU {llvm.get_host_cpu_name()}, fp32 FMA peak {peak:.1f} GFLOP/s "
          f"per core (peak_fma)\nOpenBLAS: {blas} (env {env})", flush=True)
    sides = {"before": opts.baseline, "after": opts.after, "numpy": "numpy"}
    procs = {name: subprocess.Popen([sys.executable, __file__, "--baseline", "-",
                                     "--worker", tree], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True, cwd="/")
             for name, tree in sides.items()}

    def ask(name, case):
        p = procs[name]
        p.stdin.write(json.dumps(case) + "\n")
        p.stdin.flush()
        return json.loads(p.stdout.readline())["seconds"]

    cases = [({"op": "matmul", "n": n, "threads": th}, 2 * n ** 3, ["before", "after", "numpy"])
             for th in opts.threads for n in map(int, opts.sizes.split(","))]
    if opts.conv:
        for layer in CONV_LAYERS:
            C, H, F, R, _ = layer
            flops = 2 * C * F * R * R * H * H
            cases.append(({"op": "conv2d", "layer": list(layer), "threads": 1}, flops,
                          ["before", "after"]))
    results = []
    for case, flops, names in cases:
        case = {**case, "reps": opts.reps}
        times = {n: [] for n in names}
        for r in range(opts.rounds):
            for name in (names if r % 2 == 0 else names[::-1]):
                times[name].append(ask(name, case))
        gf = {n: flops / statistics.median(ts) / 1e9 for n, ts in times.items()}
        row = {**case, "gflops": gf, "seconds": times,
               "peak_share": {n: g / (peak * case["threads"]) for n, g in gf.items()}}
        results.append(row)
        what = f"matmul {case.get('n')}"
        if case["op"] == "conv2d":
            C, H, F, R, lay = case["layer"]
            what = f"conv2d {lay} {C}->{F} {R}x{R} @{H}"
        print(f"{what:34s} {case['threads']}T " + "  ".join(
            f"{n} {g:6.1f} ({100 * row['peak_share'][n]:3.0f}%)" for n, g in gf.items())
            + (f"  after/before {gf['after'] / gf['before']:.2f}"
               + (f" after/numpy {gf['after'] / gf['numpy']:.2f}" if "numpy" in gf else "")),
            flush=True)
    for p in procs.values():
        p.stdin.close()
        p.wait()
    out = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpu_model": cpu,
           "llvm_cpu": llvm.get_host_cpu_name(), "peak_fp32_per_core": peak,
           "openblas": blas, "openblas_env": env, "baseline": opts.baseline,
           "baseline_commit": subprocess.run(["git", "-C", opts.baseline, "rev-parse", "HEAD"],
                                             capture_output=True, text=True).stdout.strip(),
           "after": opts.after,
           "commit": subprocess.run(["git", "-C", opts.after, "rev-parse", "HEAD"],
                                    capture_output=True, text=True).stdout.strip(),
           "loadavg": os.getloadavg(), "machine": hostinfo.describe(), "results": results}
    Path(opts.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
