"""The ``polyop`` command line (``polyop COMMAND ...`` or ``python -m polyop``).

Each command is a module of this package exposing ``add_parser(subparsers)``,
which declares its arguments and returns its parser, and ``run(args) -> int``,
which does the work and returns the exit status. ``COMMANDS`` lists them in
the order ``polyop --help`` shows them: a new command is one module and one
line here.

Exit statuses: 0 success, 1 a negative answer (an illegal schedule, a failed
benchmark check), 2 a usage error (bad arguments, a missing file or function,
a kernel or script polyop cannot use), printed as one line on stderr.

Example::

    >>> main(["version"])  # doctest: +ELLIPSIS
    polyop 0... (islpy ..., llvmlite ...)
    0
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .common import USAGE, UsageError

#: the command modules, in the order of ``polyop --help``
COMMANDS = ["show", "check", "bench", "tune", "demo", "version"]

_EPILOG = """\
examples:
  polyop show kernels.py:gemm                        model, dependences, loop nest
  polyop show kernels.py:gemm --schedule tile.py     ... after a schedule script
  polyop check kernels.py:gemm --schedule tile.py    exit 0 if legal, 1 if not
  polyop bench polybench --size MINI                 run a benchmark suite
  polyop tune ops                                    tune matmul/conv2d tilings here
  polyop demo                                        compile, check and time two kernels

`polyop COMMAND --help` describes each command."""


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``polyop`` with every command of ``COMMANDS``."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="polyop", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="polyop: polyhedral loop optimisation in Python.", epilog=_EPILOG)
    parser.add_argument("--version", action="version", version=f"polyop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"{__name__}.{name}")
        module.add_parser(sub).set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``polyop`` with the arguments ``argv`` (default ``sys.argv[1:]``);
    return the exit status."""
    from ..errors import PolyopError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (UsageError, PolyopError) as exc:  # the user's input, not a bug: no traceback
        kind = "" if isinstance(exc, UsageError) else f"{type(exc).__name__}: "
        print(f"polyop {args.command}: error: {kind}{exc}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        print(f"polyop {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `polyop show ... | head`: the reader has gone
        # no traceback, and none when Python flushes stdout at exit; the status
        # is a shell's for a process ended by SIGPIPE (the verdict was not all written)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
