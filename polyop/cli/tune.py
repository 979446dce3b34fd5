"""``polyop tune ops``: tune the operators' tilings on this machine and store
them in the operators' database (``polyop.tune.database``), where
``polyop.ops.matmul`` and ``conv2d`` find them."""

from __future__ import annotations

import argparse

from .common import UsageError

#: ResNet-50 layers tuned by default: (C, H, W, F, R, stride)
DEFAULT_CONVS = ["64x56x56:64:3", "128x28x28:128:3", "256x14x14:256:3", "512x7x7:512:3"]
DEFAULT_MATMULS = ["512x512x512", "1024x1024x1024"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Declare ``polyop tune``."""
    p = subparsers.add_parser(
        "tune", help="tune the operators' tilings for this machine",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["ops"], help="what to tune: the operators (matmul, conv2d)")
    p.add_argument("--matmul", action="append", metavar="MxNxK",
                   help=f"a GEMM shape (repeatable; default {' '.join(DEFAULT_MATMULS)})")
    p.add_argument("--conv", action="append", metavar="CxHxW:F:R[:stride]",
                   help="a conv2d shape, NCHW, 'same' padding (repeatable; default four "
                        "ResNet-50 layers)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--threads", type=int, default=1, help="threads of the tuned operators")
    p.add_argument("--trials", type=int, default=64, help="candidates measured per shape")
    p.add_argument("--strategy", default="model", choices=["model", "random", "grid"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log", default=None, help="JSON-lines log (resumed from when it exists)")
    p.add_argument("--workers", type=int, default=1, help="local measuring processes")
    p.add_argument("--dask", default=None, metavar="ADDRESS",
                   help="measure on a Dask cluster (scheduler address) instead")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per candidate")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _shape(text: str, parts: int | tuple[int, ...], what: str) -> list[int]:
    try:
        values = [int(x) for x in text.replace(":", "x").split("x")]
    except ValueError:
        values = []
    counts = parts if isinstance(parts, tuple) else (parts,)
    if len(values) not in counts or min(values, default=0) < 1:
        raise UsageError(f"--{what} {text!r}: expected "
                         f"{'MxNxK' if what == 'matmul' else 'CxHxW:F:R[:stride]'}")
    return values


def run(args: argparse.Namespace) -> int:
    """Tune every shape, store the best tilings, print one line per shape."""
    from ..ops import ConvShape
    from ..tune import DaskRunner, LocalRunner
    from ..tune.database import db_path
    from ..tune.ops_tasks import conv2d_task, matmul_task, tune_ops

    tasks = []
    for text in args.matmul or ([] if args.conv else DEFAULT_MATMULS):
        M, N, K = _shape(text, 3, "matmul")
        tasks.append(matmul_task(M, N, K, args.dtype, args.threads))
    for text in args.conv or ([] if args.matmul else DEFAULT_CONVS):
        v = _shape(text, (5, 6), "conv")
        C, H, W, F, R = v[:5]
        stride = v[5] if len(v) == 6 else 1
        tasks.append(conv2d_task(ConvShape(C, H, W, F, R, R, stride, R // 2), args.dtype,
                                 args.threads))
    if args.dask:
        runner = DaskRunner(args.dask, timeout=args.timeout)
    else:
        runner = LocalRunner(args.workers, args.timeout)
    try:
        results = tune_ops(tasks, trials=args.trials, strategy=args.strategy, seed=args.seed,
                           log=args.log, runner=runner, progress=not args.no_progress)
    finally:
        runner.close()
    for key, r in results.items():
        best = f"{r.best_gflops:.1f} GFLOP/s {r.best_knobs}" if r.best else "nothing measured"
        print(f"{key}: {best} ({len(r.failures)} failed of {len(r.records)})")
    print(f"database: {db_path()}")
    return 0 if all(r.best for r in results.values()) else 1
