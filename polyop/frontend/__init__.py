"""Front-ends: Python loop nests (``@polyop.kernel``) → ``Program``."""

from .parser import KernelParser, parse_kernel

__all__ = ["KernelParser", "parse_kernel"]
