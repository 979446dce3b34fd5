"""Model-guided against random search, from scratch.

The question (issue 15): does the model-guided search come within 5 % of the
best known schedule in fewer trials than random search? The operator tasks
measure the target heuristic's tiling first, and on this machine that point
is already within 5 % of the best, so both strategies would tie at trial 1.
Here no heuristic point is given (``tune(..., initial=False)``), and the
space is by default one where good points are rare: ``polyop.demo.gemm``
(fp64, ``--n`` cubed) under ``polyop.tune.default_template`` (each nest's two
inner loops split by powers of two, their tiling order, parallel and
vectorize knobs: 153,664 points). ``--space 2mm`` takes two matrix
products in a row (``tune_kernels.two_mm``, fp64) under the same template:
three nests with knobs of their own (60 million points), fast only where
both products are well tiled. ``--space matmul`` takes
``polyop.ops.matmul``'s tiling knobs instead (fp32), where most points are
within 5 % of the best.

For each strategy and seed (the same seeds for both), ``--trials`` points are
measured (one thread; two measuring processes that build together and time
one at a time). The best known is the best of everything measured in the
run, all strategies and seeds together; a run's trials-to-5 % is the first
trial whose best so far is within 5 % of it (None: not within ``--trials``).
The runs alternate between the strategies seed by seed, so that a drift of
the machine's speed over the benchmark falls on both. Runs are added to
``--out`` as they finish, so the strategies can also be run in separate
commands (``--strategies random``, then ``--strategies model``); the summary
and the best-so-far curves (``--figure``) are made at the end (``--summarise``
alone redoes them).

The best known is robust to a lucky timing: ``--retime TOP`` re-times the
TOP best distinct points of all runs, and every run's incumbents (after each
trial, the point with the best figure so far: what the tuner would return if
stopped there), in ``--rounds`` interleaved rounds; the best known is the
best median over rounds. ``--floor F`` leaves out the incumbents recorded
below F times the best figure, which keep their recorded figure. Reported
per run and strategy: the trials to within 5 % and 10 % of it (the tuner's
median-of-repeats figures against the re-timed best known), the trials
until the incumbent itself re-times to within 5 % (a run is judged by what
it returns, not by its luckiest figure), the area under the best-so-far
curve (its mean over the trials over the best known), and one-sided
p-values of model against random: Mann-Whitney's over the runs, and
Wilcoxon's signed-rank test over the seed pairs (a seed gives both
strategies the same random warm-up).

With ``--confirm K`` each run ends with the tuner's own re-timing
(``tune(..., confirm=K)``: its K fastest points timed again in 3 rounds, the
best median handed back); that point is re-timed with the others, and its
figure is reported per run (``confirmed_final_gflops``), next to what the
plain incumbent re-times at.

Run: ``python benchmarks/tune_model_vs_random.py [--space gemm|2mm|matmul] [--n 256]
[--trials 32] [--seeds 0 1 2 3 4] [--strategies random model] [--conditions TEXT]``,
then ``python benchmarks/tune_model_vs_random.py --retime 10 [--n 256]``.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # before numpy loads OpenBLAS
    os.environ.pop(_var, None)
os.environ.setdefault("POLYOP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import hostinfo  # noqa: E402


def best_so_far(gflops: list[float | None]) -> list[float]:
    """The running maximum (0 before the first success)."""
    out, best = [], 0.0
    for g in gflops:
        best = max(best, g or 0.0)
        out.append(round(best, 2))
    return out


def trials_within(curve: list[float], best_known: float, margin: float = 0.05) -> int | None:
    """The first trial (1-based) whose best-so-far is within ``margin`` of ``best_known``."""
    for k, g in enumerate(curve):
        if g >= (1 - margin) * best_known:
            return k + 1
    return None


def make_task(args):
    """The task compared: ``matmul`` (``polyop.ops.matmul``'s tiling knobs,
    fp32) or ``gemm`` (``polyop.demo.gemm``, fp64, under
    ``polyop.tune.default_template``: split factors of each nest's two inner
    loops, their tiling order, parallel and vectorize knobs)."""
    if args.space == "matmul":
        from polyop.tune.ops_tasks import matmul_task

        return matmul_task(args.n, args.n, args.n)
    from polyop.tune import KernelTask, default_template

    n = args.n
    if args.space == "2mm":
        from tune_kernels import two_mm

        return KernelTask(default_template, two_mm, {"n": n})
    from polyop.demo import gemm

    return KernelTask(default_template, gemm, {"ni": n, "nj": n, "nk": n})


def flops(space: str, n: int) -> float:
    """Floating-point operations of one run of the task (its GFLOP/s figures)."""
    return (4 if space == "2mm" else 2) * n ** 3


def run(args, out: Path) -> None:

    from polyop.tune import LocalRunner, tune

    data = json.loads(out.read_text()) if out.exists() else {}
    if (data.get("n"), data.get("trials"), data.get("space")) not in (
            (None, None, None), (args.n, args.trials, args.space)):
        raise SystemExit(f"{out} holds runs of another space, size or trial count: use --out")
    machine = hostinfo.describe()
    machine.pop("lscpu", None)
    data.update({"benchmark": "tune_model_vs_random.py: model-guided vs random, from scratch",
                 "space": args.space, "space_points": len(make_task(args).space()),
                 "n": args.n, "trials": args.trials, "threads": 1, "machine": machine})
    data.setdefault("runs", [])
    data.setdefault("conditions", [])
    data["conditions"].append({"strategies": args.strategies, "seeds": args.seeds,
                               "loadavg": hostinfo.loadavg(),
                               "note": args.conditions or "not given"})
    n = args.n
    with LocalRunner(workers=args.workers, timeout=120, repeats=5,
                     min_seconds=0.05) as runner:
        # seeds outside, strategies inside: the machine's speed drifts over a run
        # of tens of minutes (a shared VM), and alternating spreads the drift
        # over both strategies instead of handing one the fast half
        for seed in args.seeds:
            for strategy in args.strategies:
                t0 = time.time()
                r = tune(make_task(args), trials=args.trials, seed=seed,
                         strategy=strategy, runner=runner, batch=4, initial=False,
                         progress=False, confirm=args.confirm)
                measured = [x for x in r.records if x.status != "illegal"]
                data["runs"] = [x for x in data["runs"]
                                if (x["strategy"], x["seed"]) != (strategy, seed)]
                data["runs"].append({
                    "strategy": strategy, "seed": seed, "seconds": round(time.time() - t0, 1),
                    "gflops": [round(flops(args.space, n) / x.seconds / 1e9, 3) if x.ok else None
                               for x in measured],
                    "knobs": [x.knobs for x in measured],
                    "stopped_early": [bool(x.phases.get("stopped_early")) for x in measured],
                    # what tune(..., confirm=K) handed back, after its re-timing
                    "confirm": args.confirm,
                    "confirmed_knobs": r.best.knobs if args.confirm and r.best else None})
                best = flops(args.space, n) / r.best_seconds / 1e9
                print(f"{strategy} seed {seed}: best {best:.2f} GFLOP/s "
                      f"({time.time() - t0:.0f} s)", flush=True)
                out.write_text(json.dumps(data, indent=1) + "\n")  # a partial run counts


def incumbents(run: dict) -> list[dict | None]:
    """The run's incumbent after each trial: the point a user of the tuner
    would be handed if it stopped there (the best measured so far; None
    before the first success)."""
    out, best, knobs = [], 0.0, None
    for g, k, s in zip(run["gflops"], run["knobs"], run["stopped_early"]):
        if g is not None and not s and g > best:
            best, knobs = g, k
        out.append(knobs)
    return out


def _key(knobs: dict) -> str:
    return json.dumps(knobs, sort_keys=True)


def recorded(runs: list[dict]) -> dict[str, tuple[float, dict]]:
    """Each distinct point's best figure in the runs, with its knobs."""
    seen: dict[str, tuple[float, dict]] = {}
    for r in runs:
        for g, k, s in zip(r["gflops"], r["knobs"], r["stopped_early"]):
            key = _key(k)
            if g is not None and not s and g > seen.get(key, (0.0, None))[0]:
                seen[key] = (g, k)
    return seen


def retime(args, out: Path, top: int = 10, rounds: int = 5, floor: float = 0.0) -> None:
    """Re-time, in ``rounds`` interleaved rounds (each round times every
    point once, as the median of its repeats, in a shuffled order), the
    ``top`` distinct best points of all runs and every run's incumbents,
    and record each point's median over rounds as ``retimed``. The best
    known is the best of those medians, not one lucky measurement; and a
    run is judged by what its incumbent really runs at (``summarise``), not
    by the luckiest measurement it made. Incumbents recorded below ``floor``
    times the best figure are left out (``summarise`` takes their recorded
    figure): on a steady machine they cannot re-time within 5 % of the
    best, and dozens of runs hold hundreds of them."""
    from polyop.tune import LocalRunner

    data = json.loads(out.read_text())
    args.space, args.n = data.get("space", "gemm"), data["n"]  # the runs', whatever was given
    seen = recorded(data["runs"])
    best = sorted(seen.values(), key=lambda x: -x[0])[:top]
    chosen = {_key(k) for _, k in best}
    cut = floor * best[0][0]
    for r in data["runs"]:
        for k in incumbents(r) + [r.get("confirmed_knobs")]:
            if k is not None and _key(k) not in chosen and seen.get(_key(k), (0.0,))[0] >= cut:
                chosen.add(_key(k))
                best.append(seen.get(_key(k), (0.0, k)))
    task, n = make_task(args), args.n
    rng = np.random.default_rng(0)
    timed: list[list[float]] = [[] for _ in best]
    with LocalRunner(workers=args.workers, timeout=120, repeats=5,
                     min_seconds=0.05) as runner:
        for _ in range(rounds):
            order = [int(x) for x in rng.permutation(len(best))]
            for pos, res in runner.run(task, [best[k][1] for k in order]):
                if res["status"] == "ok":
                    timed[order[pos]].append(flops(args.space, n) / res["seconds"] / 1e9)
    data["retimed"] = [{"knobs": k, "recorded_gflops": g,
                        "retimed_gflops": [round(x, 3) for x in t],
                        "median_gflops": round(statistics.median(t), 3) if t else None}
                       for (g, k), t in zip(best, timed)]
    data["retime"] = {"top": top, "rounds": rounds, "points": len(best), "floor": floor,
                      "loadavg": hostinfo.loadavg()}
    out.write_text(json.dumps(data, indent=1) + "\n")
    for x in data["retimed"][:top]:
        print(f"recorded {x['recorded_gflops']:.2f} -> re-timed median {x['median_gflops']}",
              flush=True)


def area(curve: list[float], best_known: float) -> float:
    """The mean of the best-so-far curve over the trials, as a fraction of
    ``best_known`` (1.0: the best known from the first trial on)."""
    return round(sum(min(g, best_known) for g in curve) / len(curve) / best_known, 4)


def summarise(out: Path, figure: Path | None) -> None:
    data = json.loads(out.read_text())
    runs = data["runs"]
    retimed = [x["median_gflops"] for x in data.get("retimed", [])
               if x["median_gflops"] is not None]
    if retimed:
        best_known = max(retimed)
    else:  # no re-timing yet: the best single figure (a stopped-early one is rough)
        best_known = max(g for r in runs for g, s in zip(r["gflops"], r["stopped_early"])
                         if g is not None and not s)
    summary = {}
    really = {_key(x["knobs"]): x["median_gflops"] for x in data.get("retimed", [])}
    if data.get("retime", {}).get("floor"):  # points below it keep their recorded figure
        really = {**{key: g for key, (g, _) in recorded(runs).items()}, **really}
    held = [incumbents(r) for r in runs]
    judged = bool(really) and all(k is None or _key(k) in really for ks in held for k in ks)
    for r, ks in zip(runs, held):
        r["best_so_far"] = best_so_far(r["gflops"])
        for m in (5, 10):
            r[f"trials_to_within_{m}pct"] = trials_within(r["best_so_far"], best_known, m / 100)
        r["area"] = area(r["best_so_far"], best_known)
        if judged:  # what each trial's incumbent runs at, re-timed
            r["incumbent_gflops"] = [really[_key(k)] or 0.0 if k is not None else 0.0
                                     for k in ks]
            r["incumbent_trials_to_within_5pct"] = trials_within(r["incumbent_gflops"],
                                                                 best_known, 0.05)
            r["final_incumbent_gflops"] = r["incumbent_gflops"][-1]
            if r.get("confirmed_knobs"):  # the point tune(..., confirm=K) handed back
                r["confirmed_final_gflops"] = really[_key(r["confirmed_knobs"])] or 0.0
    for strategy in sorted({r["strategy"] for r in runs}):
        mine = sorted((r for r in runs if r["strategy"] == strategy), key=lambda r: r["seed"])
        summary[strategy] = {"seeds": [r["seed"] for r in mine]}
        for m in (5, 10):
            reached = [r[f"trials_to_within_{m}pct"] for r in mine]
            # a run that never came within the margin counts as past the end (trials + 1)
            ranked = [t if t is not None else data["trials"] + 1 for t in reached]
            summary[strategy].update({
                f"trials_to_within_{m}pct": reached,
                f"median_trials_to_within_{m}pct": statistics.median(ranked),
                f"reached_{m}pct": sum(t is not None for t in reached)})
        if judged:
            reached = [r["incumbent_trials_to_within_5pct"] for r in mine]
            summary[strategy].update({
                "incumbent_trials_to_within_5pct": reached,
                "median_incumbent_trials_to_within_5pct": statistics.median(
                    t if t is not None else data["trials"] + 1 for t in reached),
                "incumbent_reached_5pct": sum(t is not None for t in reached),
                "final_incumbent_gflops": [r["final_incumbent_gflops"] for r in mine]})
            if all("confirmed_final_gflops" in r for r in mine):
                summary[strategy]["confirmed_final_gflops"] = [
                    r["confirmed_final_gflops"] for r in mine]
        summary[strategy]["area"] = [r["area"] for r in mine]
        summary[strategy]["median_area"] = statistics.median(r["area"] for r in mine)
        summary[strategy]["best_gflops"] = [max(r["best_so_far"]) for r in mine]
        summary[strategy]["median_trial_gflops"] = statistics.median(
            g for r in mine for g in r["gflops"] if g is not None)
    if {"model", "random"} <= set(summary):
        summary["tests"] = _tests(runs, data["trials"], judged)
    data["best_known_gflops"] = best_known
    data["summary"] = summary
    data["note"] = ("best known = the best median of the re-timed points (retimed: the "
                    "top distinct points of all runs, each timed in interleaved rounds, "
                    "median over rounds); trials_to_within_Mpct: first trial whose best so "
                    "far (the tuner's median-of-repeats figures) is >= (1 - M/100) x best "
                    "known (None: never, counted as trials + 1 in the medians); area: mean "
                    "of the best-so-far curve (capped at the best known) / best known; "
                    "incumbent_trials_to_within_5pct: first trial whose incumbent (the "
                    "point with the best figure so far, what the tuner would return) "
                    "re-times to >= 0.95 x best known; confirmed_final_gflops: the re-timed "
                    "figure of the point tune(..., confirm=K) handed back after the last "
                    "trial; "
                    "tests: one-sided Mann-Whitney U, model better than random (paired_: "
                    "Wilcoxon signed-rank over seeds, ties left out); no "
                    "heuristic point seeded (initial=False)")
    out.write_text(json.dumps(data, indent=1) + "\n")
    for s, v in summary.items():
        if s == "tests":
            print("tests:", v)
            continue
        print(f"{s}: to within 5 % of {best_known} {v['trials_to_within_5pct']} "
              f"(median {v['median_trials_to_within_5pct']}), 10 % "
              f"{v['trials_to_within_10pct']} (median {v['median_trials_to_within_10pct']})"
              f", area median {v['median_area']}"
              + (f", incumbent re-timed within 5 % at {v['incumbent_trials_to_within_5pct']} "
                 f"(median {v['median_incumbent_trials_to_within_5pct']})"
                 if "incumbent_trials_to_within_5pct" in v else ""))
    if figure is not None:
        _figure(data, figure)


def _tests(runs: list[dict], trials: int, judged: bool) -> dict:
    """One-sided p-values: does model beat random on each measure? Mann-Whitney U
    over the runs, and (``paired_*``) Wilcoxon's signed-rank test over the seeds
    both strategies ran: a seed gives both the same random warm-up, so a pair
    that met a good point there ties, and the test leaves ties out."""
    from scipy.stats import mannwhitneyu, wilcoxon

    out = {}
    measures = [("trials_to_within_5pct", "less"), ("trials_to_within_10pct", "less"),
                ("area", "greater")]
    if judged:
        measures += [("incumbent_trials_to_within_5pct", "less"),
                     ("final_incumbent_gflops", "greater")]
        if all("confirmed_final_gflops" in r for r in runs):
            measures.append(("confirmed_final_gflops", "greater"))
    for key, better in measures:
        def vals(s, key=key):
            return [(r[key] if r[key] is not None else trials + 1)
                    for r in runs if r["strategy"] == s]
        out[key] = round(float(mannwhitneyu(vals("model"), vals("random"),
                                            alternative=better).pvalue), 4)
        by_seed = {(r["strategy"], r["seed"]): (r[key] if r[key] is not None else trials + 1)
                   for r in runs}
        diffs = [by_seed["model", seed] - by_seed["random", seed]
                 for strategy, seed in by_seed
                 if strategy == "model" and ("random", seed) in by_seed]
        if any(diffs):
            out[f"paired_{key}"] = round(float(wilcoxon(diffs, alternative=better).pvalue), 4)
    return out


def _figure(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"random": "tab:grey", "model": "tab:blue"}
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for r in data["runs"]:
        ax.plot(range(1, len(r["best_so_far"]) + 1), r["best_so_far"],
                color=colours.get(r["strategy"], "tab:red"), alpha=0.35, lw=0.9)
    for strategy, colour in colours.items():
        curves = [r["best_so_far"] for r in data["runs"] if r["strategy"] == strategy]
        if curves:
            median = np.median(np.array(curves), axis=0)
            ax.plot(range(1, len(median) + 1), median, color=colour, lw=2.6,
                    label=f"{strategy}: median of {len(curves)} seeds")
    best = data["best_known_gflops"]
    ax.axhline(0.95 * best, color="black", ls="--", lw=0.8,
               label="95 % of best known" + (" (re-timed)" if data.get("retimed") else ""))
    ax.axhline(0.90 * best, color="black", ls=":", lw=0.8, label="90 %")
    ax.set_xlabel("trial")
    ax.set_ylabel("best GFLOP/s so far")
    ax.set_ylim(0.5 * best, 1.03 * best)
    cpu = data["machine"].get("llvm_cpu", "?")
    ax.set_title(f"{data.get('space', 'gemm')} {data['n']}³ from scratch, 1 thread ({cpu}): "
                 "model-guided vs random", fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", choices=["gemm", "2mm", "matmul"], default="gemm")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2,
                    help="measuring processes (1: no build beside a timing)")
    ap.add_argument("--trials", type=int, default=32)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--strategies", nargs="+", default=["random", "model"])
    ap.add_argument("--out", default=str(HERE / "results" / "tune_model_vs_random.json"))
    ap.add_argument("--figure", default=str(HERE / "results" / "tune_curves.png"))
    ap.add_argument("--summarise", action="store_true", help="only summarise --out")
    ap.add_argument("--retime", type=int, default=0, metavar="TOP",
                    help="only re-time the TOP best distinct points of --out, then summarise")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds of --retime")
    ap.add_argument("--floor", type=float, default=0.0,
                    help="--retime leaves out incumbents recorded below FLOOR x the best")
    ap.add_argument("--conditions", default=None, help="what else ran on the machine")
    ap.add_argument("--confirm", type=int, default=0, metavar="K",
                    help="tune(..., confirm=K): re-time the K fastest points of each run "
                         "(3 rounds); the point handed back is re-timed with the rest")
    args = ap.parse_args()
    out = Path(args.out)
    if args.retime:
        retime(args, out, args.retime, args.rounds, args.floor)
    elif not args.summarise:
        run(args, out)
    summarise(out, Path(args.figure) if args.figure else None)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
