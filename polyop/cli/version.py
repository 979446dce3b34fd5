"""``polyop version``: the versions of polyop and of its toolchain."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Declare ``polyop version``."""
    return subparsers.add_parser(
        "version", help="print the versions of polyop, islpy and llvmlite",
        description="Print the versions of polyop and of its toolchain (islpy, llvmlite).")


def run(args: argparse.Namespace) -> int:
    """Print one line of versions."""
    import islpy
    import llvmlite

    from .. import __version__

    print(f"polyop {__version__} (islpy {islpy.__version__}, llvmlite {llvmlite.__version__})")
    return 0
