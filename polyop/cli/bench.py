"""``polyop bench [SUITE]``: run a benchmark suite of ``benchmarks/`` with a
progress bar and print its tables.

The suites live in the source repository's ``benchmarks/`` folder, not in the
installed package: this command imports their scripts (``--benchmarks DIR``
or ``$POLYOP_BENCHMARKS`` says where they are when polyop is installed
elsewhere) and leaves the measuring to them. Results go to a JSON file only
with ``--json PATH``: the files of ``benchmarks/results/`` are deliberate
measurements, not overwritten by a quick run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from .common import FAILED, OK, UsageError, describe

#: suite name -> (script, what it measures)
SUITES = {
    "polybench": ("polybench_bench.py", "the 30 PolyBench/C 4.2.1 kernels, polyop against numba "
                                        "(serial; --size MINI|SMALL|MEDIUM|LARGE)"),
    "peers": ("peers_bench.py", "float32 matmul, GEMM+bias+ReLU and conv2d operators against "
                                "numpy, torch, TVM, Halide (--size: matmul sizes, or 'quick')"),
}

_EPILOG = "suites:\n" + "\n".join(f"  {k:<10} {v[1]}" for k, v in SUITES.items()) + """

examples:
  polyop bench                                   PolyBench, MEDIUM, every kernel
  polyop bench polybench --size MINI --only gemm,2mm --repeat 3
  polyop bench peers --size quick --threads 1,2
  polyop bench peers --only matmul --size 512,1024 --peers numpy,polyop --json out.json

exit status: 0 done and every result checked, 1 a failed or mismatching
result, 2 a usage error (unknown suite, kernel or size; no benchmarks folder)."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Declare ``polyop bench``."""
    p = subparsers.add_parser(
        "bench", help="run a benchmark suite (" + ", ".join(SUITES) + ") and print its tables",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=describe(__doc__), epilog=_EPILOG)
    p.add_argument("suite", nargs="?", default="polybench", choices=list(SUITES),
                   metavar="SUITE", help=f"one of {', '.join(SUITES)} (default polybench)")
    p.add_argument("--size", default=None,
                   help="polybench: MINI, SMALL, MEDIUM (default) or LARGE; peers: matmul "
                        "sizes such as 512,1024, or 'quick' (default: every size)")
    p.add_argument("--threads", default="1",
                   help="thread counts, comma-separated (peers: one process each; polybench "
                        "runs serially: 1 only)")
    p.add_argument("--only", default="", metavar="NAMES",
                   help="comma-separated kernels (polybench) or workloads (peers)")
    p.add_argument("--peers", default="", help="peers: comma-separated subset (numpy always runs)")
    p.add_argument("--repeat", type=int, default=None,
                   help="timed runs per case (default: the suite's, 7)")
    p.add_argument("--max-wait", type=float, default=0.0,
                   help="peers: seconds to wait per case for other processes to go idle")
    p.add_argument("--json", metavar="PATH", help="also write every raw result to PATH")
    p.add_argument("--benchmarks", metavar="DIR", default=None,
                   help="the benchmarks folder (default: $POLYOP_BENCHMARKS, else the "
                        "source repository's benchmarks/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    # a peers run of one thread count, in a process started with that count's environment
    p.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)
    p.add_argument("--peak", type=float, default=None, help=argparse.SUPPRESS)
    return p


def benchmarks_dir(arg: str | None) -> Path:
    """The folder of the benchmark scripts, or a ``UsageError`` saying how to get it."""
    if arg or os.environ.get("POLYOP_BENCHMARKS"):
        where = Path(arg or os.environ["POLYOP_BENCHMARKS"])
    else:
        where = Path(__file__).resolve().parents[2] / "benchmarks"
    if not (where / SUITES["polybench"][0]).is_file():
        raise UsageError(f"no benchmark suites in {where}: they are part of polyop's source "
                         "repository, not of the installed package; run from a clone of the "
                         "repository, or pass --benchmarks DIR (or set POLYOP_BENCHMARKS)")
    return where


def import_script(folder: Path, name: str) -> ModuleType:
    """Import the benchmark script ``folder/name`` (its folder first on ``sys.path``,
    as when it runs as a script, so that it finds its neighbours)."""
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    stem = Path(name).stem
    if stem in sys.modules:
        return sys.modules[stem]
    spec = importlib.util.spec_from_file_location(stem, folder / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[stem] = module
    spec.loader.exec_module(module)
    return module


def progress(items: Iterable, desc: str, enabled: bool) -> Iterable:
    """``items`` with a progress bar on stderr (tqdm, or one line per item
    without it); each item's name shows as the bar's postfix."""
    items = list(items)
    if not enabled:
        yield from items
        return
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is an optional extra (tune): plain lines instead
        for n, item in enumerate(items, 1):
            print(f"[{desc} {n}/{len(items)}] {item}", file=sys.stderr, flush=True)
            yield item
        return
    with tqdm(items, desc=desc, file=sys.stderr, leave=True) as bar:
        for item in bar:
            bar.set_postfix_str(str(getattr(item, "label", item)))
            yield item


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _threads(text: str) -> list[int]:
    try:
        out = [int(t) for t in _names(text)]
    except ValueError:
        out = []
    if not out or min(out) < 1:
        raise UsageError(f"--threads wants positive thread counts such as 1 or 1,2; got {text!r}")
    return out


def _write(path: str, doc: dict[str, Any]) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"results written to {out}")


def run_polybench(args: argparse.Namespace, folder: Path) -> int:
    """PolyBench kernels one by one (``polybench_bench.bench_one``), then its table."""
    size = (args.size or "MEDIUM").upper()
    if _threads(args.threads) != [1]:
        raise UsageError("the polybench suite runs serially (polyop and numba on one thread); "
                         "--threads applies to the peers suite")
    pb = import_script(folder, SUITES["polybench"][0])
    if size not in pb.SIZES:
        raise UsageError(f"unknown PolyBench size {args.size!r}; sizes: {', '.join(pb.SIZES)}")
    names = _names(args.only) or list(pb.BENCHES)
    unknown = [n for n in names if n not in pb.BENCHES]
    if unknown:
        raise UsageError(f"unknown PolyBench kernel(s) {', '.join(unknown)}; kernels: "
                         f"{', '.join(pb.BENCHES)}")
    repeat = args.repeat or 7
    pb.warm_up()
    results = [pb.bench_one(pb.BENCHES[n], size, repeat, False)
               for n in progress(names, f"polybench {size}", not args.no_progress)]
    geo = pb.print_table(results, size, False)
    if args.json:
        _write(args.json, {
            "benchmark": "PolyBench/C 4.2.1", "size": size, "repeat": repeat, "cpython": False,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": pb.machine_info(), "geomean_speedup_polyop_vs_numba": geo,
            "results": results})
    return OK if all(r.get("match", False) for r in results) else FAILED


def _peers_opts(args: argparse.Namespace, peak: float) -> argparse.Namespace:
    """The options ``peers_bench.worker`` reads."""
    quick = (args.size or "").lower() == "quick"
    sizes = "" if quick or not args.size else args.size
    return argparse.Namespace(
        workloads=args.only, peers=args.peers, sizes=sizes, quick=quick,
        repeat=args.repeat or (5 if quick else 7), repeat_large=5, settle_ms=30.0,
        max_wait=args.max_wait, peak=peak)


def run_peers(args: argparse.Namespace, folder: Path) -> int:
    """One process per thread count, each started with that count's thread
    variables (they must be set before numpy loads OpenBLAS), each running
    ``peers_bench.worker`` with a progress bar over its cases."""
    pb = import_script(folder, SUITES["peers"][0])
    threads = _threads(args.threads)
    args.only = args.only or ",".join(pb.peers.WORKLOADS)
    unknown = [w for w in _names(args.only) if w not in pb.peers.WORKLOADS]
    if unknown:
        raise UsageError(f"unknown peers workload(s) {', '.join(unknown)}; workloads: "
                         f"{', '.join(pb.peers.WORKLOADS)}")
    size = args.size or ""
    if size and size.lower() != "quick" and not all(t.isdigit() for t in _names(size)):
        raise UsageError(f"peers --size wants matmul sizes such as 512,1024 or 'quick'; "
                         f"got {size!r}")
    if args.worker_out:  # the child: one thread count, this process's environment set for it
        def bar(cases, workload):
            return progress(cases, f"{workload}, {threads[0]} thread(s)", not args.no_progress)

        run = pb.worker(_peers_opts(args, args.peak), threads[0], progress=bar)
        Path(args.worker_out).write_text(json.dumps(run))
        return OK
    peak = args.peak or import_script(folder, "peak_fma.py").peak("float32")
    runs, failed = [], 0
    for t in threads:
        with tempfile.TemporaryDirectory() as tmp:
            part = Path(tmp) / "part.json"
            cmd = [sys.executable, "-m", "polyop", "bench", "peers", "--threads", str(t),
                   "--only", args.only, "--peers", args.peers, "--size", size,
                   "--max-wait", str(args.max_wait), "--benchmarks", str(folder),
                   "--peak", str(peak), "--worker-out", str(part)]
            cmd += ["--repeat", str(args.repeat)] if args.repeat else []
            cmd += ["--no-progress"] if args.no_progress else []
            env = {**os.environ, **pb.peers.thread_env(t)}
            with contextlib.suppress(KeyboardInterrupt):
                rc = subprocess.run(cmd, env=env).returncode
            if rc != 0 or not part.exists():
                print(f"the {t}-thread run failed (exit status {rc})")
                failed += 1
                continue
            runs.append(json.loads(part.read_text()))
    if args.json:
        _write(args.json, {"date": datetime.datetime.now().isoformat(timespec="seconds"),
                           "machine": pb.machine(), "peak_per_core_gflops": peak,
                           "check_rtol": pb.peers.RTOL, "runs": runs})
    return FAILED if failed else OK


def run(args: argparse.Namespace) -> int:
    """Run the suite named by ``args.suite``."""
    if args.repeat is not None and args.repeat < 1:
        raise UsageError(f"--repeat must be at least 1, got {args.repeat}")
    folder = benchmarks_dir(args.benchmarks)
    return {"polybench": run_polybench, "peers": run_peers}[args.suite](args, folder)
