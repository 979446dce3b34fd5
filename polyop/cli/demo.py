"""``polyop demo``: compile, check and time a GEMM and a 2-D Jacobi stencil
(``polyop.demo``)."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Declare ``polyop demo``."""
    p = subparsers.add_parser(
        "demo", help="compile, check and time a GEMM and a 2-D Jacobi stencil",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compile a GEMM and a 2-D Jacobi stencil, check them against numpy "
                    "and time them against numpy and numba (if installed).",
        epilog="examples:\n  polyop demo\n  polyop demo --repeat 11")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per variant (median)")
    return p


def run(args: argparse.Namespace) -> int:
    """Run the demo."""
    from ..demo import run_demo

    if args.repeat < 1:
        from .common import UsageError

        raise UsageError(f"--repeat must be at least 1, got {args.repeat}")
    return run_demo(args.repeat)
