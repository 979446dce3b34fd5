"""``polyop show FILE.py:FUNC``: a kernel's model, dependences and generated code.

The kernel is a ``@polyop.kernel`` of the file, or a plain function of it
(wrapped with ``polyop.kernel``). ``--schedule SCRIPT.py`` first runs the
script's ``schedule(sch)`` on a ``polyop.Schedule`` of the kernel: a primitive
that breaks a dependence stops it with the ``IllegalScheduleError`` (exit 1).
``--target`` lowers and compiles for another machine; ``--asm`` and
``--llvm-ir`` print the code LLVM made for it, cross-compiled when the target
is not this machine. For a GPU target (``cuda``, ``opencl``) the code shown is
the kernel's CUDA C or OpenCL C source.
"""

from __future__ import annotations

import argparse

from .common import (
    FAILED,
    OK,
    UsageError,
    describe,
    load_kernel,
    load_schedule_function,
    run_schedule_script,
)

SECTIONS = ("model", "deps", "code")

_EPILOG = """\
examples:
  polyop show kernels.py:gemm
  polyop show kernels.py:gemm --only code --schedule tile.py
  polyop show kernels.py:gemm --target "cpu -mcpu=skylake-avx512" --asm
  polyop show kernels.py:gemm --target "cpu -mtriple=aarch64-linux-gnu -mcpu=neoverse-v2" --llvm-ir
  polyop show kernels.py:gemm --schedule gpu.py --target cuda --only code

A schedule script is a Python file defining schedule(sch):

  def schedule(sch):
      i, j, k = sch.get_loops("S0")
      sch.reorder(k, j)
      sch.parallel(i)

exit status: 0 shown, 1 the schedule script applied an illegal primitive,
2 a usage error (missing file or function, a kernel polyop cannot parse)."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Declare ``polyop show``."""
    p = subparsers.add_parser(
        "show", help="print a kernel's model, dependences and generated code",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=describe(__doc__), epilog=_EPILOG)
    p.add_argument("kernel", metavar="FILE.py:FUNC",
                   help="a @polyop.kernel or plain function FUNC of the Python file FILE.py")
    p.add_argument("--schedule", metavar="SCRIPT.py",
                   help="apply the script's schedule(sch) to the kernel first")
    p.add_argument("--target", metavar="TARGET", default=None,
                   help="what to generate code for, e.g. 'cpu -mcpu=haswell' (default: this "
                        "machine; see polyop.Target)")
    p.add_argument("--only", metavar="SECTION", action="append", choices=SECTIONS,
                   help=f"print only this section ({', '.join(SECTIONS)}; repeatable)")
    p.add_argument("--asm", action="store_true", help="also print the assembly")
    p.add_argument("--llvm-ir", action="store_true", help="also print the optimised LLVM IR")
    return p


def _section(title: str, text: str) -> None:
    print(f"== {title} ==")
    print(text.rstrip() or "(none)")
    print()


def run(args: argparse.Namespace) -> int:
    """Print the sections asked for; the code is lowered (and, with ``--asm`` or
    ``--llvm-ir``, compiled) for ``--target``."""
    from .. import IllegalScheduleError, Schedule, build, dependences, lower
    from ..target import as_target, host

    target = as_target(args.target)  # a bad target string is refused before any work
    k = load_kernel(args.kernel)
    obj = k
    sections = args.only or SECTIONS
    if args.schedule:
        fn = load_schedule_function(args.schedule)
        sch = Schedule(k)
        try:
            obj = run_schedule_script(fn, args.schedule, sch)
        except IllegalScheduleError as exc:
            print(f"illegal schedule: {exc}")
            return FAILED
    if "model" in sections:
        _section(f"model of {args.kernel}", str(k.program))
    if "deps" in sections:
        _section("dependences", str(dependences(k)))
    if obj is not k:
        _section("schedule", "\n".join(str(obj).splitlines()[1:]))
    if target.kind != "cpu" and (args.asm or args.llvm_ir):
        raise UsageError(f"--asm and --llvm-ir are for CPU targets; for {target.kind} the "
                         "code section is the kernel's source")
    if "code" in sections:
        title = "loop nest" if target.kind == "cpu" else f"{target.kind} source"
        _section(f"{title} (target {target})", str(lower(obj, target=target)))
    if args.asm or args.llvm_ir:
        compiled = build(obj, target=target)
        where = "this machine" if target == host() else f"cross-compiled for {target}"
        if args.llvm_ir:
            _section(f"LLVM IR ({where})", compiled.llvm_ir)
        if args.asm:
            _section(f"assembly ({where})", compiled.asm)
    elif target.kind == "cpu" and target != host():
        print(f"(code for {target}: pass --asm or --llvm-ir to print it)")
    return OK
