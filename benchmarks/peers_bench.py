"""Peers of issue 4's benchmark tables (numpy, torch, TVM, Halide), float32, CPU.

Workloads (``benchmarks/peers.py``, registry ``WORKLOADS``): ``matmul``
(M = N = K in 512, 1000, 1024, 2048), ``gemm_bias_relu`` (same sizes),
``conv2d`` and ``conv_bn_relu`` (batch 1, ResNet-50 3x3 and 1x1 layers, NCHW and
NHWC). For each thread count a fresh subprocess runs with
``OPENBLAS/OMP/MKL/TVM/HL_NUM_THREADS`` set before any library starts its thread
pool (and ``torch.set_num_threads``). Per case:

- every peer is set up (compilation, constant-weight layout changes and output
  allocation are outside the timed call) and its result is compared once with
  a float64 numpy reference: max |peer - ref| / max |ref| must be <= 1e-3, else
  the peer is reported WRONG and not timed; an absent or failing peer is
  reported with the reason;
- the peers run interleaved (order reversed every other round), ``--repeat``
  rounds (``--repeat-large`` when a call does more than 8 GFLOP) after one
  warm-up call each; wall clock (``perf_counter``), median. With several
  threads, each timed call follows untimed calls of the same peer for
  ``--settle-ms`` (default 30 ms), and ``OPENBLAS_THREAD_TIMEOUT=4``,
  ``TVM_BIND_THREADS=0`` and ``TVM_THREAD_POOL_SPIN_COUNT=10000`` are set: a
  library's worker threads spin for a while after a call, and on 2 cores they
  would otherwise slow the next peer down by up to 10x (``peers.thread_env``);
- before timing a case, the script waits (``--max-wait``) until other
  processes use under 10% of the cores, and it measures their share during
  the timing: cases above 5% are marked ``!`` (the machine may be shared);
- the table shows the median in ms, GFLOP/s, the share of the fp32 peak
  (``--peak`` per core, default measured by ``peak_fma``, times the threads)
  and the speed-up over numpy (numpy time / peer time, > 1 is faster than numpy).

The JSON (default ``benchmarks/results/peers_cpu.json``; with ``--update``
only the cases run are replaced in it) holds every raw time,
the check errors, the machine (``lscpu``), the versions, the load average and
the other processes' share of the cores per case.

Usage::

    python benchmarks/peers_bench.py                      # everything, 1 and 2 threads
    python benchmarks/peers_bench.py --quick              # 2 sizes, 2 conv layers
    python benchmarks/peers_bench.py --workloads matmul --threads 1
    python benchmarks/peers_bench.py --workloads matmul --sizes 512,2048 --peers numpy,halide
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import hostinfo  # noqa: E402
import numpy as np  # noqa: E402
import peers  # noqa: E402

sys.path.insert(0, str(ROOT))
import polyop_peers  # noqa: E402  (polyop's own operators, as one more peer)

polyop_peers.register()

LARGE_FLOPS = 8e9


def machine() -> dict[str, Any]:
    """The machine (``hostinfo``) and the peers' versions."""
    return {**hostinfo.describe(), "versions": peers.versions()}


def _jiffies() -> tuple[int, int]:
    """All cores' (total, idle + iowait) clock ticks from ``/proc/stat``."""
    with open("/proc/stat") as f:
        v = [int(t) for t in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]


def cpu_busy(seconds: float = 1.0) -> float:
    """Fraction of all cores busy over ``seconds`` (other processes' load while
    this one sleeps); NaN where ``/proc/stat`` is unavailable."""
    try:
        t0, i0 = _jiffies()
        time.sleep(seconds)
        t1, i1 = _jiffies()
    except OSError:
        return float("nan")
    return 1.0 - (i1 - i0) / max(t1 - t0, 1)


class OthersLoad:
    """Context measuring the share of all cores that *other* processes used
    meanwhile: busy ticks of the machine minus this process's CPU time.

    >>> with OthersLoad() as load:
    ...     time.sleep(0.05)
    >>> 0.0 <= load.value <= 1.0
    True
    """
    value = float("nan")
    significant = False

    def __enter__(self) -> OthersLoad:
        self.j0, self.c0 = _jiffies(), os.times()
        return self

    def __exit__(self, *exc: object) -> None:
        (t1, i1), c1 = _jiffies(), os.times()
        total = t1 - self.j0[0]
        ours = (c1.user + c1.system - self.c0.user - self.c0.system) * os.sysconf("SC_CLK_TCK")
        busy = total - (i1 - self.j0[1]) - ours
        self.value = min(1.0, max(0.0, busy / total)) if total > 0 else 0.0
        # both counters tick at 100 Hz: ignore up to 3 ticks of rounding
        self.significant = busy > max(0.05 * total, 3)


def wait_idle(max_wait: float, threshold: float = 0.1) -> float:
    """Wait (at most ``max_wait`` s) until other processes use less than
    ``threshold`` of the cores over 0.3 s; return the last measurement."""
    t_end = time.perf_counter() + max_wait
    busy = cpu_busy(0.3)
    while busy > threshold and time.perf_counter() < t_end:
        busy = cpu_busy(1.0)
    return busy


def bench_case(wl: peers.Workload, case: peers.Case, names: list[str], threads: int,
               opts: argparse.Namespace, rng: np.random.Generator) -> dict[str, Any]:
    """Set up, check and time the peers ``names`` of ``wl`` on ``case``."""
    x = wl.inputs(case, rng)
    ref = wl.reference(case, x)
    res: dict[str, Any] = {"case": case.label, "params": case.params, "flops": case.flops,
                           "peers": {}}
    runs = {}
    for name in names:
        entry: dict[str, Any] = {}
        res["peers"][name] = entry
        t0 = time.perf_counter()
        try:
            run = wl.peers[name](case, x, threads)
            entry["setup_s"] = time.perf_counter() - t0
            err = peers.check(run(), ref)
            entry["max_rel_error"] = err
            if err <= peers.RTOL:
                entry["status"] = "ok"
                runs[name] = run
            else:
                entry["status"] = "WRONG"
        except peers.PeerUnavailable as exc:
            entry.update(status="absent", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a broken peer is reported, not fatal
            entry.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                         traceback=traceback.format_exc())
    repeat = opts.repeat_large if case.flops > LARGE_FLOPS else opts.repeat
    settle = opts.settle_ms / 1e3 if threads > 1 else 0.0
    res["busy_before"] = wait_idle(opts.max_wait)
    with OthersLoad() as load:
        times = peers.time_interleaved(runs, repeat, settle_s=settle)
    res["others_load"], res["others_load_significant"] = load.value, load.significant
    peak = opts.peak * threads
    base = statistics.median(times["numpy"]) if "numpy" in times else None
    for name, ts in times.items():
        med = statistics.median(ts)
        gf = case.flops / med / 1e9
        res["peers"][name].update(times_s=ts, median_s=med, gflops=gf, pct_peak=100 * gf / peak,
                                  vs_numpy=None if base is None else base / med)
    return res


def print_rows(res: dict[str, Any]) -> None:
    """One table line per peer of a case; ``!`` marks a case during which other
    processes used more than 5% of the cores (and more than 3 clock ticks)."""
    mark = "!" if res.get("others_load_significant") else " "
    for name, e in res["peers"].items():
        head = f"{res['case']:<25}{mark} {name:<14}"
        if "median_s" not in e:
            why = e.get("error", f"max rel. error {e.get('max_rel_error', float('nan')):.1e}")
            print(f"{head} {e['status'].upper()}: {why.splitlines()[0][:90]}")
            continue
        vs = "" if e["vs_numpy"] is None else f"{e['vs_numpy']:7.2f}"
        print(f"{head} {1e3 * e['median_s']:9.3f} {e['gflops']:8.1f} {e['pct_peak']:6.1f}% "
              f"{vs:>7}  {e['max_rel_error']:.0e}", flush=True)


def worker(opts: argparse.Namespace, threads: int, progress=None) -> dict[str, Any]:
    """Run every selected workload with ``threads`` threads in this process;
    ``progress(cases, workload)``, if given, wraps each workload's list of cases
    (``polyop bench`` passes a progress bar)."""
    done = peers.set_threads(threads)
    sizes = tuple(int(s) for s in opts.sizes.split(",")) if opts.sizes else None
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"threads": threads, "thread_settings": done,
                           "env": {k: os.environ.get(k) for k in peers.thread_env(threads)},
                           "workloads": {}}
    print(f"\n=== {threads} thread(s): {', '.join(done)}; peak {opts.peak * threads:.1f} "
          "GFLOP/s ===")
    for wname in opts.workloads.split(","):
        wl = peers.WORKLOADS[wname]
        names = [n for n in wl.peers if not opts.peers or n in opts.peers.split(",")]
        if "numpy" in wl.peers and "numpy" not in names:
            names.insert(0, "numpy")  # the baseline of the ratio column
        print(f"\n{wname}, {threads} thread(s)")
        hdr = (f"{'case':<26} {'peer':<14} {'ms':>9} {'GFLOP/s':>8} {'%peak':>7} "
               f"{'x numpy':>7}  err")
        print(hdr + "\n" + "-" * len(hdr))
        out["workloads"][wname] = rows = []
        cases = wl.cases(quick=opts.quick, sizes=sizes)
        for case in progress(cases, wname) if progress else cases:
            rows.append(bench_case(wl, case, names, threads, opts, rng))
            print_rows(rows[-1])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--workloads", default=",".join(peers.WORKLOADS))
    ap.add_argument("--sizes", default="", help="matmul/gemm sizes, e.g. 512,1024")
    ap.add_argument("--peers", default="", help="comma-separated subset (numpy always runs)")
    ap.add_argument("--quick", action="store_true", help="sizes 512,1024; 2 conv layers; 5 rounds")
    ap.add_argument("--repeat", type=int, default=None, help="rounds per case (default 7)")
    ap.add_argument("--repeat-large", type=int, default=5, help="rounds above 8 GFLOP")
    ap.add_argument("--settle-ms", type=float, default=30.0,
                    help="with >1 thread, untimed calls before each timed one (default 30 ms)")
    ap.add_argument("--max-wait", type=float, default=60.0,
                    help="seconds to wait per case for other processes to go idle")
    ap.add_argument("--peak", type=float, default=None,
                    help="fp32 GFLOP/s of one core (default: measured, peak_fma)")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "peers_cpu.json"))
    ap.add_argument("--update", action="store_true",
                    help="replace only the cases run in an existing --json file")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)
    opts = ap.parse_args(argv)
    if opts.repeat is None:
        opts.repeat = 5 if opts.quick else 7
    if opts.peak is None and opts.worker is None:
        import peak_fma  # beside this script; polyop's own FMA loop for the host
        opts.peak = peak_fma.peak("float32")
    for w in opts.workloads.split(","):
        if w not in peers.WORKLOADS:
            ap.error(f"unknown workload {w!r}; known: {', '.join(peers.WORKLOADS)}")
    if opts.worker is not None:
        Path(opts.worker_out).write_text(json.dumps(worker(opts, opts.worker)))
        return 0

    info = machine()
    load_before, busy = os.getloadavg(), cpu_busy()
    print(f"CPU: {info['cpu_model']}; BLAS: {info['blas']}; load average {load_before[0]:.2f}; "
          f"cores busy before the run: {100 * busy:.0f}%")
    if busy > 0.1:
        print("WARNING: other processes are using the CPU; timings will be low and noisy")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    runs = []
    args = list(sys.argv[1:] if argv is None else argv)
    for threads in opts.threads:
        with tempfile.TemporaryDirectory() as tmp:
            part = Path(tmp) / "part.json"
            env = {**os.environ, **peers.thread_env(threads)}
            cmd = [sys.executable, __file__, *args, "--peak", str(opts.peak),
                   "--worker", str(threads), "--worker-out", str(part)]
            rc = subprocess.run(cmd, env=env).returncode
            if rc != 0 or not part.exists():
                print(f"{threads}-thread run failed (exit status {rc})")
                continue
            runs.append(json.loads(part.read_text()))
    load_after, busy_after = os.getloadavg(), cpu_busy()
    print(f"\nload average after: {load_after[0]:.2f}; cores busy after: {100 * busy_after:.0f}%")
    print("! = other processes used more than 5% of the cores while the case was timed")
    doc = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": info,
           "peak_per_core_gflops": opts.peak, "check_rtol": peers.RTOL,
           "repeat": opts.repeat, "repeat_large": opts.repeat_large, "quick": opts.quick,
           "settle_ms": opts.settle_ms,
           "load_average": {"before": load_before, "after": load_after},
           "cpu_busy": {"before": busy, "after": busy_after}, "runs": runs}
    out = Path(opts.json)
    if opts.update and out.exists():
        doc = _updated(json.loads(out.read_text()), doc)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")
    return 0 if len(runs) == len(opts.threads) else 1


def _updated(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old`` with the cases of ``new`` replaced (or added), per thread count
    and workload; each update is listed in ``updates`` with its date, load and
    settings."""
    runs = {r["threads"]: r for r in old["runs"]}
    for run in new["runs"]:
        if run["threads"] not in runs:
            runs[run["threads"]] = run
            continue
        kept = runs[run["threads"]]["workloads"]
        for workload, cases in run["workloads"].items():
            fresh = {c["case"]: c for c in cases}  # cases run again replace the old ones
            merged = [fresh.pop(c["case"], c) for c in kept.get(workload, [])]
            kept[workload] = merged + list(fresh.values())
    keep = ("date", "load_average", "cpu_busy", "repeat", "repeat_large", "quick")
    update = {k: new[k] for k in keep} | {
        "workloads": sorted({w for r in new["runs"] for w in r["workloads"]}),
        "threads": [r["threads"] for r in new["runs"]]}
    return {**old, "runs": [runs[t] for t in sorted(runs)],
            "updates": old.get("updates", []) + [update]}


if __name__ == "__main__":
    raise SystemExit(main())
