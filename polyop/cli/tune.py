"""``polyop tune``: search schedules for the fastest on this machine (or on a
Dask cluster), with ``polyop.tune``.

``polyop tune FILE.py:FUNC --sizes n=512,m=256`` tunes a kernel at those
sizes over the space of ``auto_schedule``'s decisions, or over the knobs of
a template script (``--schedule-template SCRIPT.py``, defining
``template(cfg, kernel)``: it declares knobs on ``cfg`` and returns a
``polyop.Schedule``); it shows a progress bar, then prints the best
schedule and its time, and appends every trial to ``--log`` (a run started
again with the same log resumes). ``polyop tune --apply-best LOG
FILE.py:FUNC`` prints the best schedule of a log again, replayed from its
trace.

``polyop tune ops`` tunes the operators' tilings and stores them in the
operators' database (``polyop.tune.database``), where ``polyop.ops.matmul``
and ``conv2d`` find them.

examples:
  polyop tune kernels.py:gemm --sizes ni=512,nj=512,nk=512 --trials 64 --log gemm.jsonl
  polyop tune kernels.py:gemm --sizes ni=512,nj=512,nk=512 --schedule-template tiles.py
  polyop tune --apply-best gemm.jsonl kernels.py:gemm
  polyop tune ops --matmul 512x512x512 --trials 64
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from .common import UsageError, describe, load_file, load_kernel, split_spec, user_error

#: ResNet-50 layers tuned by default: (C, H, W, F, R, stride)
DEFAULT_CONVS = ["64x56x56:64:3", "128x28x28:128:3", "256x14x14:256:3", "512x7x7:512:3"]
DEFAULT_MATMULS = ["512x512x512", "1024x1024x1024"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Declare ``polyop tune``."""
    p = subparsers.add_parser(
        "tune", help="tune a kernel's schedule, or the operators' tilings, for this machine",
        description=describe(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", metavar="FILE.py:FUNC | ops",
                   help="the kernel to tune, or 'ops': the operators (matmul, conv2d)")
    p.add_argument("--sizes", default=None, metavar="n=512,m=256",
                   help="a kernel's size parameters while it is tuned")
    p.add_argument("--schedule-template", default=None, metavar="SCRIPT.py",
                   help="a script defining template(cfg, kernel) (default: the space of "
                        "auto_schedule's decisions)")
    p.add_argument("--target", default="cpu", help="the target compiled for (default: this CPU)")
    p.add_argument("--apply-best", default=None, metavar="LOG",
                   help="print the best schedule of a log for the kernel; tune nothing")
    p.add_argument("--matmul", action="append", metavar="MxNxK",
                   help=f"a GEMM shape (repeatable; default {' '.join(DEFAULT_MATMULS)})")
    p.add_argument("--conv", action="append", metavar="CxHxW:F:R[:stride]",
                   help="a conv2d shape, NCHW, 'same' padding (repeatable; default four "
                        "ResNet-50 layers)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--threads", type=int, default=1, help="threads of the tuned operators")
    p.add_argument("--trials", type=int, default=64,
                   help="candidates measured (per shape for ops)")
    p.add_argument("--strategy", default="model", choices=["model", "random", "grid"])
    p.add_argument("--confirm", type=int, default=0, metavar="K",
                   help="after the search, time the K fastest points again (3 rounds) and "
                        "keep the best median (default 0: the fastest figure)")
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
    """``polyop tune ops``, ``polyop tune FILE.py:FUNC`` or ``--apply-best``."""
    if args.apply_best:
        return run_apply_best(args)
    if args.confirm < 0:
        raise UsageError(f"--confirm {args.confirm}: expected 0 or more points")
    if args.what == "ops":
        if args.sizes or args.schedule_template:
            raise UsageError("--sizes and --schedule-template are for a kernel "
                             "(polyop tune FILE.py:FUNC), not for ops")
        return run_ops(args)
    return run_kernel(args)


def run_ops(args: argparse.Namespace) -> int:
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
                           log=args.log, runner=runner, progress=not args.no_progress,
                           confirm=args.confirm)
    finally:
        runner.close()
    for key, r in results.items():
        best = f"{r.best_gflops:.1f} GFLOP/s {r.best_knobs}" if r.best else "nothing measured"
        print(f"{key}: {best} ({len(r.failures)} failed of {len(r.records)})")
    print(f"database: {db_path()}")
    return 0 if all(r.best for r in results.values()) else 1


# ---------------------------------------------------------------- a kernel's schedule


def parse_sizes(text: str | None) -> dict[str, int]:
    """``"n=512,m=256"`` as ``{"n": 512, "m": 256}``.

    >>> parse_sizes("n=512, m=256")
    {'n': 512, 'm': 256}
    >>> parse_sizes("n=x")
    Traceback (most recent call last):
      ...
    polyop.cli.common.UsageError: --sizes 'n=x': expected NAME=INT pairs separated by commas, \
like n=512,m=256
    """
    out: dict[str, int] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, eq, value = part.partition("=")
        try:
            number = int(value)
        except ValueError:
            number = -1
        if not eq or not name.strip().isidentifier() or number < 0:
            raise UsageError(f"--sizes {text!r}: expected NAME=INT pairs separated by "
                             "commas, like n=512,m=256")
        out[name.strip()] = number
    return out


@functools.cache
def _kernel(path: str, func: str):
    return load_kernel(f"{path}:{func}")


@functools.cache
def _template(path: str):
    fn = getattr(load_file(path, "schedule template"), "template", None)
    if not callable(fn):
        raise UsageError(f"schedule template {path} defines no function template(cfg, kernel) "
                         "(it declares knobs on cfg and returns a polyop.Schedule)")
    return fn


def file_task(spec: str, sizes: dict[str, int], template_path: str | None = None,
              target: str = "cpu"):
    """The tuning task of the kernel ``FILE.py:FUNC`` (a ``FileKernelTask``)."""
    from ..tune.task import KernelTask, auto_template

    class FileKernelTask(KernelTask):
        """A kernel (and template) of the user's files: measuring processes load
        them from those files, as they cannot import them by module name."""

        def __reduce__(self):
            return file_task, (spec_abs, self.sizes, tpl_abs, self.target)

    path, func = split_spec(spec)
    spec_abs = f"{Path(path).resolve()}:{func}"
    tpl_abs = str(Path(template_path).resolve()) if template_path else None
    template = _template(tpl_abs) if tpl_abs else auto_template
    task = FileKernelTask(template, _kernel(*split_spec(spec_abs)), sizes, target=target)
    # the key names the files, not the modules polyop made of them, so that a
    # log is resumed and --apply-best finds its records
    tpl = Path(template_path).name if template_path else "auto_schedule"
    task.key = (f"{Path(path).name}:{func}:{tpl}:"
                + ",".join(f"{k}={v}" for k, v in sorted(sizes.items())))
    return task


def _runner(args: argparse.Namespace):
    from ..tune import DaskRunner, LocalRunner

    if args.dask:
        return DaskRunner(args.dask, timeout=args.timeout)
    if args.workers < 1:
        raise UsageError(f"--workers {args.workers}: expected at least 1")
    return LocalRunner(args.workers, args.timeout)


def run_kernel(args: argparse.Namespace) -> int:
    """Tune ``FILE.py:FUNC``; print the best schedule and its time."""
    from ..errors import PolyopError
    from ..tune import tune

    if args.matmul or args.conv:
        raise UsageError("--matmul and --conv are for polyop tune ops")
    if args.trials < 1:
        raise UsageError(f"--trials {args.trials}: expected at least 1")
    task = file_task(args.what, parse_sizes(args.sizes), args.schedule_template, args.target)
    runner = _runner(args)
    try:
        result = tune(task, trials=args.trials, strategy=args.strategy, seed=args.seed,
                      log=args.log, runner=runner, progress=not args.no_progress,
                      confirm=args.confirm)
    except (PolyopError, UsageError):
        raise
    except Exception as exc:  # noqa: BLE001 - the template's own mistake: its line
        if args.schedule_template:
            raise UsageError(f"schedule template {user_error(args.schedule_template, exc)}",
                             exc) from None
        raise
    finally:
        runner.close()
    measured = [r for r in result.records if r.status != "illegal"]
    illegal = len(result.records) - len(measured)
    print(f"{task.key}: {len(measured)} trials, {len(result.failures)} failed, "
          f"{illegal} illegal points pruned")
    best = result.best
    if best is None:
        print("no candidate ran correctly; the first failure:",
              result.failures[0].error if result.failures else "none")
        return 1
    how = (f", the median of {1 + max(r.confirm for r in result.confirmations)} timings"
           if result.confirmations else "")
    print(f"best: {best.seconds * 1e3:.4g} ms (trial {best.trial}, {best.worker}{how}) "
          f"{best.knobs}")
    print(result.best_schedule)
    if args.log:
        print(f"log: {args.log}")
    return 0


def run_apply_best(args: argparse.Namespace) -> int:
    """Print the best schedule of the log ``--apply-best`` for ``FILE.py:FUNC``."""
    import json

    from ..schedule import Schedule
    from ..tune import read_log
    from ..tune.space import TuneError

    if args.what == "ops":
        raise UsageError("--apply-best needs a kernel, FILE.py:FUNC (the operators "
                         "read their database themselves)")
    path, func = split_spec(args.what)
    log = Path(args.apply_best)
    if not log.is_file():
        raise UsageError(f"--apply-best {log}: no such log")
    k = load_kernel(args.what)
    prefix = f"{Path(path).name}:{func}:"
    sizes = parse_sizes(args.sizes)
    want = ",".join(f"{n}={v}" for n, v in sorted(sizes.items()))
    ok = [r for r in read_log(log) if r.task.startswith(prefix) and r.ok
          and (not sizes or r.task.rsplit(":", 1)[1] == want)]
    tasks = sorted({r.task for r in ok})
    if not tasks:
        raise UsageError(f"--apply-best {log}: no successful record of {path}:{func}"
                         + (f" at {want}" if sizes else ""))
    if len(tasks) > 1:
        raise UsageError(f"--apply-best {log}: {path}:{func} was tuned as {', '.join(tasks)}; "
                         "choose one with --sizes (and a template)")
    best = min(ok, key=lambda r: (r.seconds, r.trial))
    try:
        sch = Schedule.from_json(json.dumps(best.trace), k)
    except Exception as exc:  # noqa: BLE001 - a log of another version of the kernel
        raise TuneError(f"{log}: the best record of {tasks[0]} (trial {best.trial}) does not "
                        f"replay on {args.what}: {type(exc).__name__}: {exc}") from exc
    print(f"{tasks[0]}: best {best.seconds * 1e3:.4g} ms (trial {best.trial}) {best.knobs}")
    print(sch)
    return 0
