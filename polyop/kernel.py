"""``@polyop.kernel``: the user-facing decorator and kernel object."""

from __future__ import annotations

import functools
from collections.abc import Callable


class Kernel:
    """A Python loop nest turned into a polyhedral kernel.

    The decorated function stays plain Python (``k.py_func``); ``k.program`` is
    its polyhedral model, built on first use; calling ``k(...)`` validates the
    arguments, compiles once and runs in place on the numpy arrays.

    Example::

        >>> import polyop
        >>> @polyop.kernel
        ... def scale(n: int, x: "f64[n]"):
        ...     for i in range(n):
        ...         x[i] *= 2.0
        >>> scale.program.statements[0].name
        'S0'
    """

    def __init__(self, fn: Callable):
        self.py_func = fn
        self.__name__ = fn.__name__
        self._program = None
        self._compiled = None
        functools.update_wrapper(self, fn)

    @property
    def program(self):
        if self._program is None:
            from .frontend import parse_kernel

            self._program = parse_kernel(self.py_func)
        return self._program

    def compile(self):
        """Compile (once) and return the compiled ``CompiledKernel``."""
        if self._compiled is None:
            from .pipeline import compile_program

            self._compiled = compile_program(self.program)
        return self._compiled

    def schedule(self, check: bool = True):
        """A new ``polyop.Schedule`` over this kernel."""
        from .schedule import Schedule

        return Schedule(self, check=check)

    def __call__(self, *args, **kwargs):
        return self.compile()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<polyop.kernel {self.__name__}>"


def kernel(fn: Callable) -> Kernel:
    """Decorate a Python loop nest as a polyop kernel (see ``Kernel``)."""
    return Kernel(fn)
