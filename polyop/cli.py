"""The ``polyop`` command line: ``polyop demo`` and ``polyop version``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="polyop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="compile, check and time a GEMM and a 2-D Jacobi stencil")
    demo.add_argument("--repeat", type=int, default=5, help="timed runs per variant (median)")
    sub.add_parser("version", help="print versions of polyop and its toolchain")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(args.repeat)
    import islpy
    import llvmlite

    import polyop

    print(f"polyop {polyop.__version__} (islpy {islpy.__version__}, "
          f"llvmlite {llvmlite.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
