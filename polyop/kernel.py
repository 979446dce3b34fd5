"""``@polyop.kernel``: the user-facing decorator and kernel object."""

from __future__ import annotations

import functools
from collections.abc import Callable

# the kernel language's functions live with the front-end that recognises them
from .frontend.locals import local, prefetch  # noqa: F401


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

    def __init__(self, fn: Callable, fp_contract: bool = False):
        self.py_func = fn
        self.__name__ = fn.__name__
        #: build options used by ``compile()`` (see ``polyop.build``)
        self.fp_contract = fp_contract
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

            self._compiled = compile_program(self.program, fp_contract=self.fp_contract)
            if self._compiled._fast is not None:  # calls go straight to the compiled checks
                from .fastcall import install_call

                install_call(self, self._compiled._fast)
        return self._compiled

    def schedule(self, check: bool = True):
        """A new ``polyop.Schedule`` over this kernel."""
        from .schedule import Schedule

        return Schedule(self, check=check)

    def __call__(self, *args, **kwargs):
        compiled = self._compiled if self._compiled is not None else self.compile()
        return compiled._call(*args, **kwargs)  # the checked call, without a second frame

    def __repr__(self) -> str:
        return f"<polyop.kernel {self.__name__}>"

    def _repr_html_(self) -> str:
        """Jupyter's view: source, statements, dependences (``polyop.viz.html``)."""
        from .deps import dependences
        from .viz.html import kernel_html

        return kernel_html(self, dependences)


def kernel(fn: Callable | None = None, *, fp_contract: bool = False):
    """Decorate a Python loop nest as a polyop kernel (see ``Kernel``).

    ``@polyop.kernel(fp_contract=True)`` lets LLVM fuse ``a * b + c`` into one
    fused multiply-add (one rounding instead of two): faster, and usually more
    accurate, but no longer bit-identical to CPython (see ``polyop.build``).

    Example::

        >>> @kernel(fp_contract=True)
        ... def axpy(n: int, a: "f32", x: "f32[n]", y: "f32[n]"):
        ...     for i in range(n):
        ...         y[i] += a * x[i]
        >>> axpy.fp_contract
        True
    """
    if fn is None:
        return lambda f: Kernel(f, fp_contract=fp_contract)
    return Kernel(fn, fp_contract=fp_contract)
