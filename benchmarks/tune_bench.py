"""Tuning fp32 GEMM with polyop.tune: model-guided against random search.

For each size (default 512 and 1024, square), on one thread:

- numpy's ``A @ B`` (OpenBLAS; ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE``
  are removed from this process's environment before numpy is imported, so
  OpenBLAS picks its kernel for this CPU; the kernel is printed);
- the shipped ``polyop.ops.matmul`` (the target heuristic's tiling);
- ``polyop.tune`` over the operator's tiling knobs (``matmul_task``) with
  the random and the model-guided strategy, same seed, same trials: the
  best-so-far curves, and the trials each needs to come within 5 % of the
  best known (the best of everything measured here).

Results go to ``benchmarks/results/tune_gemm.json`` with the machine and its
load (other processes share it). Run: ``python benchmarks/tune_bench.py
[--sizes 512 1024] [--trials 64] [--seeds 0 1] [--tvm]``.

``--tvm``: TVM's MetaSchedule tunes the same GEMMs in the same run
(``tune_tvm.py``, in a child process with a timeout, since it may crash);
its time to tune and GFLOP/s, or why it did not run, go into the JSON.

``--conv``: ``polyop.ops.conv2d``'s knobs (``conv2d_task``) tuned on
ResNet-50's distinct convolutions (23 at stride 1 and 2; NCHW or
``--layouts``, batch 1, fp32, one thread or ``--conv-threads`` for polyop and
PyTorch alike, measured by ``--workers 1`` then), then the default schedule (the target heuristic's
``ConvTiling.default``), the tuned one and PyTorch timed in interleaved
rounds, each output checked against PyTorch's. The tuned schedule beats the
default on a layer when it is another tiling and its times are smaller in a
one-sided Mann-Whitney test (p < 0.05); results in
``benchmarks/results/tune_conv.json``.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # before numpy loads OpenBLAS
    os.environ.pop(_var, None)
os.environ.setdefault("POLYOP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one thread against one thread

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import hostinfo  # noqa: E402


def _median_seconds(fn, repeats: int = 7, min_seconds: float = 0.05) -> float:
    fn()
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - t0 >= min_seconds:
            break
        number *= 2
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return statistics.median(times)


def curve(records, flops: int) -> list[float | None]:
    """Best GFLOP/s so far after each measured trial (illegal points excluded)."""
    best, out = 0.0, []
    for r in records:
        if r.status == "illegal":
            continue
        if r.ok:
            best = max(best, flops / r.seconds / 1e9)
        out.append(round(best, 2) if best else None)
    return out


def phase_seconds(records, wall: float) -> dict:
    """Where a tuning's time went: the measuring processes' build (compile),
    check (reference, checked run) and time (warm-up, repeats) seconds summed
    over its trials (builds run on two processes at once, so their sum can
    exceed their share of the wall time), and the wall time."""
    out = {"wall": round(wall, 1)}
    for k in ("build_seconds", "check_seconds", "time_seconds"):
        out[k.split("_")[0]] = round(sum(r.phases.get(k, 0.0) for r in records), 1)
    out["stopped_early"] = sum(bool(r.phases.get("stopped_early")) for r in records)
    return out


def seconds_to_best(records, t0: float) -> float | None:
    """Seconds from the start of the tuning to the record of its best trial."""
    import datetime

    ok = [r for r in records if r.ok]
    if not ok:
        return None
    best = min(ok, key=lambda r: r.seconds)
    at = datetime.datetime.fromisoformat(best.time).timestamp()
    return round(max(0.0, at - t0), 1)


def trials_to(points: list[float | None], target: float) -> int | None:
    for k, v in enumerate(points):
        if v is not None and v >= target:
            return k + 1
    return None


#: ResNet-50's (v1.5) distinct convolutions at batch 1: (name, C, H=W, F, R,
#: stride); "same" padding (R // 2). The first seven are the peers table's.
RESNET_LAYERS = [
    ("3x3 64@56", 64, 56, 64, 3, 1), ("3x3 128@28", 128, 28, 128, 3, 1),
    ("3x3 256@14", 256, 14, 256, 3, 1), ("3x3 512@7", 512, 7, 512, 3, 1),
    ("1x1 64->256@56", 64, 56, 256, 1, 1), ("1x1 256->64@56", 256, 56, 64, 1, 1),
    ("1x1 1024->256@14", 1024, 14, 256, 1, 1),
    ("7x7/2 3->64@224", 3, 224, 64, 7, 2), ("1x1 64->64@56", 64, 56, 64, 1, 1),
    ("1x1 256->128@56", 256, 56, 128, 1, 1), ("3x3/2 128@56", 128, 56, 128, 3, 2),
    ("1x1 128->512@28", 128, 28, 512, 1, 1), ("1x1 512->128@28", 512, 28, 128, 1, 1),
    ("1x1 512->256@28", 512, 28, 256, 1, 1), ("3x3/2 256@28", 256, 28, 256, 3, 2),
    ("1x1 256->1024@14", 256, 14, 1024, 1, 1), ("1x1 1024->512@14", 1024, 14, 512, 1, 1),
    ("3x3/2 512@14", 512, 14, 512, 3, 2), ("1x1 512->2048@7", 512, 7, 2048, 1, 1),
    ("1x1 2048->512@7", 2048, 7, 512, 1, 1),
    ("1x1/2 256->512@56", 256, 56, 512, 1, 2), ("1x1/2 512->1024@28", 512, 28, 1024, 1, 2),
    ("1x1/2 1024->2048@14", 1024, 14, 2048, 1, 2)]


def _faster_p(fast: list[float], slow: list[float]) -> float:
    """One-sided Mann-Whitney U p-value that ``fast``'s times are smaller."""
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(fast, slow, alternative="less").pvalue)


def _interleaved(fns: dict, rounds: int) -> dict[str, list[float]]:
    """Seconds per call of each of ``fns`` in ``rounds`` rounds, one timing of
    each per round, in reverse order every other round (as
    ``peers.time_interleaved``): a load that comes and goes hits all of them
    alike, and none always runs right after the same other one."""
    names = list(fns)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            times[name].append(_median_seconds(fns[name], repeats=3, min_seconds=0.05))
    return times


def conv_main(args) -> None:
    """``--conv``: tune conv2d on ResNet-50's layers (module docstring)."""
    import torch

    import polyop
    from polyop.codegen.parallel import set_num_threads
    from polyop.ops import ConvShape, ConvTiling
    from polyop.tune import LocalRunner, tune
    from polyop.tune.ops_tasks import conv2d_task

    threads = args.conv_threads
    torch.set_num_threads(threads)
    set_num_threads(threads)
    machine = hostinfo.describe()
    machine.pop("lscpu", None)
    print(f"CPU: {machine['cpu_model']} (LLVM {machine['llvm_cpu']}); torch {torch.__version__}",
          flush=True)
    load = {"loadavg_start": hostinfo.loadavg()}
    rows, started = [], time.time()
    names = set(args.layers or [])
    with LocalRunner(workers=args.workers, timeout=120, repeats=5, min_seconds=0.05) as runner:
        for (name, C, H, F, R, stride), layout in itertools.product(RESNET_LAYERS,
                                                                    args.layouts):
            if names and name not in names:
                continue
            shape = ConvShape(C, H, H, F, R, R, stride, R // 2, layout)

            def build(tiling, C=C, H=H, F=F, R=R, stride=stride, layout=layout):
                return polyop.ops.conv2d(C, H, H, F, R, stride=stride, pad=R // 2,
                                         layout=layout, threads=threads, tiling=tiling)
            t0 = time.time()
            r = tune(conv2d_task(shape, threads=threads), trials=args.conv_trials, seed=args.seed,
                     strategy="model", runner=runner, batch=4, progress=False)
            tune_seconds = time.time() - t0
            task, space = r.task, r.task.space()
            rng = np.random.default_rng(0)
            dims = shape.arrays()
            x = rng.random(dims["x"], dtype=np.float32) - 0.5
            w = rng.random(dims["w"], dtype=np.float32) - 0.5
            # the tuning's best time is the luckiest of many noisy ones: its
            # finalists (best three, and the default, as tune(..., confirm=K)
            # does) are timed again, interleaved, to pick the tuned tiling; the
            # comparison below is timed afresh
            default_tiling = ConvTiling.default(shape, "float32", threads)
            ok = sorted((x_ for x_ in r.records if x_.ok), key=lambda x_: x_.seconds)
            finalists = list(dict.fromkeys(
                task.tiling(space.get(space.index_of(x_.knobs))) for x_ in ok))[:args.finalists]
            finalists += [default_tiling] if default_tiling not in finalists else []
            fin_ops = {k: build(t) for k, t in enumerate(finalists)}
            buf = np.empty(shape.arrays()["out"], np.float32)
            picked = _interleaved({k: (lambda op=op, x=x, w=w, o=buf: op(x, w, o))
                                   for k, op in fin_ops.items()}, args.rounds)
            tuned_tiling = finalists[min(picked, key=lambda k: statistics.median(picked[k]))]
            ops = {"default": build(default_tiling), "tuned": build(tuned_tiling)}
            if layout == "NCHW":
                tx, tw = torch.from_numpy(x[None]), torch.from_numpy(w)
            else:  # channels_last views, as in conv_layers_bench.py
                tx = torch.from_numpy(x[None]).permute(0, 3, 1, 2)
                tw = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous(
                    memory_format=torch.channels_last)
            want = torch.nn.functional.conv2d(tx, tw, stride=stride, padding=R // 2)[0]
            want = (want if layout == "NCHW" else want.permute(1, 2, 0)).numpy()
            outs = {k: np.empty(want.shape, np.float32) for k in ops}
            for k, op in ops.items():  # every figure below is of a checked output
                op(x, w, outs[k])
                np.testing.assert_allclose(outs[k], want, rtol=0, atol=1e-4 * np.abs(want).max())
            fns = {k: (lambda op=op, o=outs[k], x=x, w=w: op(x, w, o)) for k, op in ops.items()}
            fns["torch"] = lambda tx=tx, tw=tw, p=R // 2, st=stride: torch.nn.functional.conv2d(
                tx, tw, stride=st, padding=p)
            times = _interleaved(fns, args.rounds)
            gf = {k: round(shape.flops / statistics.median(v) / 1e9, 2) for k, v in times.items()}
            same = tuned_tiling == default_tiling
            row = {"layer": name, "layout": layout, "threads": threads, "C": C, "H": H, "W": H,
                   "F": F, "R": R, "stride": stride,
                   "gflops_median": gf,
                   "gflops_best": {k: round(shape.flops / min(v) / 1e9, 2)
                                   for k, v in times.items()},
                   "tuned_over_default": round(gf["tuned"] / gf["default"], 3),
                   "tuned_over_torch": round(gf["tuned"] / gf["torch"], 3),
                   # the default is itself the tuning's pick: nothing to beat
                   "tuned_is_default": same,
                   "p_tuned_faster": None if same else round(
                       _faster_p(times["tuned"], times["default"]), 4),
                   "default_tiling": repr(default_tiling), "tuned_tiling": repr(tuned_tiling),
                   "tuning_best_gflops": round(r.best_gflops, 2),
                   "tuning_seconds": round(tune_seconds, 1),
                   "trials": len([x for x in r.records if x.status != "illegal"]),
                   "failures": len(r.failures),
                   "curve_gflops": curve(r.records, shape.flops)}
            print(f"{name} {layout} {threads}t: default {gf['default']}, tuned {gf['tuned']}, "
                  f"torch {gf['torch']} "
                  f"GFLOP/s (tuned/default {row['tuned_over_default']}, {tune_seconds:.0f} s "
                  f"of tuning) {tuned_tiling}", flush=True)
            rows.append(row)
    load["loadavg_end"] = hostinfo.loadavg()
    result = {
        "benchmark": "tune_bench.py --conv: polyop.ops.conv2d tuned vs default vs PyTorch",
        "machine": machine, "load": load, "torch": torch.__version__,
        "note": (f"{args.conditions or 'conditions not given'} (load average above): "
                 "the final comparison interleaves default, tuned and torch, one "
                 f"timing of each per round, {args.rounds} rounds; gflops_median is the "
                 "median over rounds. The tuned tiling is the best of the tuning's "
                 f"{args.finalists} best points and the default timed again in "
                 f"{args.rounds} interleaved rounds (the default is also trial 0 of every "
                 "tuning). "
                 f"batch 1, fp32, {threads} thread(s), layouts {args.layouts}; OPENBLAS_CORETYPE "
                 "and OPENBLAS_L2_SIZE unset"),
        "strategy": "model", "trials_per_layer": args.conv_trials, "seed": args.seed,
        "tuned_beats_default": sum(r["tuned_over_default"] > 1 for r in rows),
        # a real difference: a tiling other than the default's, faster in the
        # interleaved rounds with a one-sided Mann-Whitney p below 0.05
        "tuned_beats_default_p05": sum(not r["tuned_is_default"] and r["p_tuned_faster"] < 0.05
                                       for r in rows),
        "tuned_is_default": sum(r["tuned_is_default"] for r in rows),
        "tuned_beats_default_by_3pct": sum(r["tuned_over_default"] >= 1.03 for r in rows),
        "wall_seconds": round(time.time() - started, 1), "layers": rows,
    }
    out = Path(args.out or HERE / "results" / "tune_conv.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"tuned beats default on {result['tuned_beats_default']} of {len(rows)} layers "
          f"({result['tuned_beats_default_p05']} with p < 0.05, "
          f"{result['tuned_beats_default_by_3pct']} by 3 % or more; the default was the "
          f"tuning's pick on {result['tuned_is_default']}); wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    ap.add_argument("--trials", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0, help="seed of --conv's tuning")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds of GEMM tuning")
    ap.add_argument("--tvm", action="store_true", help="TVM MetaSchedule on the same GEMMs")
    ap.add_argument("--tvm-timeout", type=float, default=900.0)
    ap.add_argument("--tvm-from", default=None, metavar="JSON",
                    help="without --tvm: carry an earlier results file's TVM figures, marked")
    ap.add_argument("--workers", type=int, default=2,
                    help="measuring processes (they build together, time one at a time)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--conditions", default=None,
                    help="what else ran on the machine, recorded as the result's note")
    ap.add_argument("--conv", action="store_true", help="tune conv2d on ResNet-50's layers")
    ap.add_argument("--conv-trials", type=int, default=24)
    ap.add_argument("--layers", nargs="*", help="only these layers (names as printed)")
    ap.add_argument("--layouts", nargs="+", default=["NCHW"], help="layouts of --conv")
    ap.add_argument("--conv-threads", type=int, default=1,
                    help="threads of --conv's operators and of PyTorch (measure with "
                         "--workers 1 above 1)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds of --conv")
    ap.add_argument("--finalists", type=int, default=3,
                    help="--conv: the tuning's best points timed again, with the default, "
                         "to pick the tuned one")
    ap.add_argument("--recheck", default=None, metavar="JSON",
                    help="time numpy, shipped and the best tuned GEMM again, interleaved")
    args = ap.parse_args()
    if args.recheck:
        recheck(Path(args.recheck), args.rounds)
        return
    if args.conv:
        conv_main(args)
        return

    import polyop
    from polyop.ops import MatmulTiling
    from polyop.tune import LocalRunner, tune
    from polyop.tune.ops_tasks import matmul_task

    machine = hostinfo.describe()
    machine.pop("lscpu", None)
    print(f"CPU: {machine['cpu_model']} (LLVM {machine['llvm_cpu']}); OpenBLAS: "
          f"{machine['openblas_kernels']}", flush=True)
    out = Path(args.out or HERE / "results" / "tune_gemm.json")
    result = {
        "benchmark": "tune_bench.py: fp32 GEMM tiling knobs, random vs model-guided",
        "machine": machine, "load": {"loadavg_start": hostinfo.loadavg()},
        "note": (f"{args.conditions or 'conditions not given'} (load average above); "
                 "numpy and the shipped operator are timed before each size's tuning"),
        "threads": 1, "trials": args.trials, "seeds": args.seeds, "sizes": []}
    started = time.time()
    # two measuring processes on two cores: they build and check candidates
    # together, and each timing runs alone (LocalRunner's exclusive mode)
    with LocalRunner(workers=args.workers, timeout=120, repeats=5, min_seconds=0.05) as runner:
        for n in args.sizes:
            flops = 2 * n ** 3
            rng = np.random.default_rng(0)
            a = rng.random((n, n), dtype=np.float32)
            b = rng.random((n, n), dtype=np.float32)
            c = np.empty((n, n), np.float32)
            t_np = _median_seconds(lambda a=a, b=b, c=c: np.matmul(a, b, out=c))
            shipped = polyop.ops.matmul(n, n, n, threads=1,
                                        tiling=MatmulTiling.default("float32", n, n, 1))
            t_ship = _median_seconds(lambda f=shipped, a=a, b=b, c=c: f(a, b, c))
            np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-4)
            row = {"n": n, "numpy_gflops": round(flops / t_np / 1e9, 2),
                   "shipped_gflops": round(flops / t_ship / 1e9, 2),
                   "shipped_tiling": repr(shipped.tiling), "runs": []}
            print(f"{n}: numpy {row['numpy_gflops']} GFLOP/s, shipped polyop "
                  f"{row['shipped_gflops']}", flush=True)
            for seed in args.seeds:
                for strategy in ("random", "model"):
                    t0 = time.time()
                    r = tune(matmul_task(n, n, n), trials=args.trials, seed=seed,
                             strategy=strategy, runner=runner, batch=4, progress=False)
                    wall = time.time() - t0
                    points = curve(r.records, flops)
                    ph = phase_seconds(r.records, wall)
                    row["runs"].append({
                        "strategy": strategy, "seed": seed,
                        "best_gflops": round(r.best_gflops, 2), "best_knobs": r.best_knobs,
                        "curve_gflops": points, "seconds": round(wall, 1),
                        "seconds_to_best": seconds_to_best(r.records, t0),
                        "phases": ph, "failures": len(r.failures)})
                    print(f"  {strategy} seed {seed}: best {r.best_gflops:.1f} GFLOP/s after "
                          f"{len(points)} trials ({wall:.0f} s; {ph}) {r.best_knobs}",
                          flush=True)
            if args.tvm:
                row["tvm"] = run_tvm(n, args.trials, machine["llvm_cpu"], args.tvm_timeout)
                print(f"  TVM MetaSchedule: {row['tvm']}", flush=True)
            elif args.tvm_from:  # an earlier run's TVM figures, said to be so
                old = json.loads(Path(args.tvm_from).read_text())
                for o in old["sizes"]:
                    if o["n"] == n and "tvm" in o:
                        row["tvm"] = {**o["tvm"], "from_earlier_run": (
                            f"{args.tvm_from}, numpy {o['numpy_gflops']} GFLOP/s then: "
                            "not measured in this run")}
            best_known = max([row["shipped_gflops"]] + [s["best_gflops"] for s in row["runs"]])
            row["best_known_gflops"] = best_known
            for s in row["runs"]:
                s["trials_to_95pct_of_best"] = trials_to(s["curve_gflops"], 0.95 * best_known)
                s["vs_numpy"] = round(s["best_gflops"] / row["numpy_gflops"], 3)
                s["vs_shipped"] = round(s["best_gflops"] / row["shipped_gflops"], 3)
            reached = [(s["strategy"], s["seed"], s["trials_to_95pct_of_best"])
                       for s in row["runs"]]
            print(f"  trials to 95% of {best_known}: {reached}", flush=True)
            result["sizes"].append(row)
            result["load"]["loadavg_end"] = hostinfo.loadavg()
            result["wall_seconds"] = round(time.time() - started, 1)
            out.parent.mkdir(parents=True, exist_ok=True)  # after each size: a partial run counts
            out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


def recheck(path: Path, rounds: int) -> None:
    """Time numpy, the shipped operator and each size's best tuned tiling again,
    interleaved (one timing of each per round), and add the figures to the
    results at ``path``: tuning's own figures were taken minutes apart, under a
    load that came and went."""
    import polyop
    from polyop.ops import MatmulTiling
    from polyop.tune.ops_tasks import matmul_task

    result = json.loads(path.read_text())
    for row in result["sizes"]:
        n = row["n"]
        best = max(row["runs"], key=lambda s: s["best_gflops"])
        task = matmul_task(n, n, n)
        tuned = task.tiling(task.space().get(task.space().index_of(best["best_knobs"])))
        rng = np.random.default_rng(0)
        a = rng.random((n, n), dtype=np.float32)
        b = rng.random((n, n), dtype=np.float32)
        ops = {"shipped": polyop.ops.matmul(n, n, n, threads=1,
                                            tiling=MatmulTiling.default("float32", n, n, 1)),
               "tuned": polyop.ops.matmul(n, n, n, threads=1, tiling=tuned)}
        outs = {k: np.empty((n, n), np.float32) for k in ops}
        for k, op in ops.items():
            op(a, b, outs[k])
            np.testing.assert_allclose(outs[k], a.astype(np.float64) @ b, rtol=1e-4)
        fns = {k: (lambda op=op, o=outs[k], a=a, b=b: op(a, b, o)) for k, op in ops.items()}
        c = np.empty((n, n), np.float32)
        fns["numpy"] = lambda c=c, a=a, b=b: np.matmul(a, b, out=c)
        times = _interleaved(fns, rounds)
        gf = {k: round(2 * n ** 3 / statistics.median(v) / 1e9, 2) for k, v in times.items()}
        row["recheck"] = {"gflops_median": gf, "tuned_tiling": repr(tuned), "rounds": rounds,
                          "tuned_vs_numpy": round(gf["tuned"] / gf["numpy"], 3),
                          "tuned_vs_shipped": round(gf["tuned"] / gf["shipped"], 3),
                          "loadavg": hostinfo.loadavg()}
        print(f"{n}: {row['recheck']}", flush=True)
    path.write_text(json.dumps(result, indent=1) + "\n")


def run_tvm(n: int, trials: int, cpu: str, timeout: float) -> dict:
    """TVM's MetaSchedule on the ``n``-cubed GEMM (``tune_tvm.py``, a child
    process under ``timeout`` seconds): its JSON line, or why there is none."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        try:
            proc = subprocess.run([sys.executable, str(HERE / "tune_tvm.py"), str(n),
                                   str(trials), work, cpu], capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"status": "timeout", "error": f"no result within {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if lines:
        return json.loads(lines[-1][len("RESULT "):])
    tail = " ".join((proc.stdout + proc.stderr).split())[-600:]
    return {"status": "crashed", "returncode": proc.returncode, "error": tail}

if __name__ == "__main__":
    main()
