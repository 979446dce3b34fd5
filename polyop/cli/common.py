"""What the commands of ``polyop`` share: loading a kernel named ``FILE.py:FUNC``,
running a schedule script, and reporting the user's mistakes without a traceback.

A command signals a mistake of its user (a missing file, a function that is not
there, a kernel outside the kernel language) by raising ``UsageError``; ``main``
prints its message and exits with status 2. Errors raised by the user's own
code (the kernel file or the schedule script) are shown as one line naming the
file and line of that code, not polyop's frames.

Example::

    >>> split_spec("kernels/gemm.py:gemm")
    ('kernels/gemm.py', 'gemm')
    >>> split_spec("gemm.py")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    polyop.cli.common.UsageError: expected FILE.py:FUNC (a Python file and ... got 'gemm.py'
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

#: exit statuses shared by every command
OK, FAILED, USAGE = 0, 1, 2

_module_ids = itertools.count()


class UsageError(Exception):
    """A mistake in what the user asked for; ``main`` prints it and exits with 2.
    ``cause`` is the error of polyop or of the user's code behind it, if any
    (a ``FrontendError`` keeps its file, line and column there)."""

    def __init__(self, msg: str, cause: BaseException | None = None):
        super().__init__(msg)
        self.cause = cause


def describe(doc: str) -> str:
    """A module docstring as a command's ``--help`` text: reST's double
    backquotes dropped, since a terminal shows them as they are.

    >>> describe("``polyop show``: prints ``k.program``.")
    'polyop show: prints k.program.'
    """
    return doc.replace("``", "").strip()


def split_spec(spec: str) -> tuple[str, str]:
    """``"FILE.py:FUNC"`` as ``(FILE.py, FUNC)``; a ``UsageError`` for anything else."""
    path, colon, func = spec.rpartition(":")
    if not colon or not path or not func.isidentifier():
        raise UsageError(f"expected FILE.py:FUNC (a Python file and the name of a kernel "
                         f"in it), got {spec!r}")
    return path, func


def _last_frame(path: str | Path, exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of ``exc``'s traceback that runs the file ``path``."""
    here = Path(path).resolve()
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if Path(f.filename).resolve() == here]
    return frames[-1] if frames else None


def user_error(path: str | Path, exc: BaseException) -> str:
    """One line for an exception raised by the user's file ``path``: where in
    that file it happened (the innermost frame there) and what it was."""
    if isinstance(exc, SyntaxError) and exc.filename and \
            Path(exc.filename).resolve() == Path(path).resolve():
        return f"{path}:{exc.lineno}: SyntaxError: {exc.msg}"
    f = _last_frame(path, exc)
    where = f"{path}:{f.lineno}: " if f else f"{path}: "
    code = f" (in `{f.line.strip()}`)" if f and f.line else ""
    return f"{where}{type(exc).__name__}: {exc}{code}"


def load_file(path: str, what: str) -> ModuleType:
    """Execute the Python file ``path`` as a fresh module (its folder on
    ``sys.path``, so that it may import its neighbours). ``what`` names the file
    in messages ("kernel file", "schedule script")."""
    from ..errors import PolyopError

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{what} {path}: no such file")
    name = f"_polyop_cli_{next(_module_ids)}_{p.stem if p.stem.isidentifier() else 'file'}"
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:
        raise UsageError(f"{what} {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # inspect.getsource finds a kernel's code through it
    folder = str(p.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except PolyopError as exc:  # a kernel used while the file is imported
        raise UsageError(f"{what} {path}: {type(exc).__name__}: {exc}", exc) from None
    except Exception as exc:  # noqa: BLE001 - the user's code failed: say where, no traceback
        raise UsageError(f"{what} {user_error(path, exc)}", exc) from None
    return module


def load_kernel(spec: str):
    """The ``polyop.Kernel`` named by ``FILE.py:FUNC``: a ``@polyop.kernel`` of
    the file, or a plain function of it, wrapped. Its model is built here, so
    that a kernel outside the kernel language is a ``UsageError`` (with the
    ``FrontendError``'s file, line and column) before any command uses it, and
    so is an access proven out of bounds (``BoundsError``)."""
    from ..bounds import check_bounds
    from ..errors import PolyopError
    from ..kernel import Kernel, kernel

    path, func = split_spec(spec)
    module = load_file(path, "kernel file")
    obj = getattr(module, func, None)
    if obj is None:
        found = sorted(k for k, v in vars(module).items()
                       if isinstance(v, Kernel) or (callable(v) and getattr(
                           v, "__module__", None) == module.__name__ and not isinstance(v, type)))
        raise UsageError(f"{path} has no function {func!r} (functions and kernels there: "
                         f"{', '.join(found) or 'none'})")
    if not isinstance(obj, Kernel):
        if not callable(obj) or isinstance(obj, type) or not hasattr(obj, "__code__"):
            raise UsageError(f"{spec}: {func} is a {type(obj).__name__}, not a function "
                             "or a @polyop.kernel")
        obj = kernel(obj)
    try:
        # model and bounds proof now: a FrontendError or BoundsError is the user's,
        # reported before any command works on the kernel
        check_bounds(obj.program)
    except PolyopError as exc:
        raise UsageError(f"kernel {spec} rejected: {type(exc).__name__}: {exc}", exc) from None
    return obj


def load_schedule_function(path: str):
    """The function ``schedule(sch)`` of the schedule script ``path``."""
    module = load_file(path, "schedule script")
    fn = getattr(module, "schedule", None)
    if not callable(fn):
        raise UsageError(f"schedule script {path} defines no function schedule(sch) "
                         "(it receives a polyop.Schedule of the kernel and applies primitives)")
    return fn


def run_schedule_script(fn, path: str, sch: Any):
    """Call the script's ``schedule(sch)``; return the schedule it leaves: ``sch``,
    or the ``polyop.Schedule`` it returns (a script may build its own, e.g.
    ``Schedule(sch.program, check=False)``). ``IllegalScheduleError`` passes
    through (the caller reports it); any other error of the script, polyop's
    ``ScheduleError`` included, is a ``UsageError`` naming the script's line."""
    from ..errors import IllegalScheduleError
    from ..schedule import Schedule

    try:
        out = fn(sch)
    except IllegalScheduleError:
        raise
    except Exception as exc:  # noqa: BLE001 - the script's mistake: its line, no traceback
        raise UsageError(f"schedule script {user_error(path, exc)}", exc) from None
    if out is None:
        return sch
    if not isinstance(out, Schedule):
        raise UsageError(f"schedule script {path}: schedule(sch) returned a "
                         f"{type(out).__name__}; return nothing or a polyop.Schedule")
    return out


def script_line(path: str, exc: BaseException) -> str | None:
    """``FILE:LINE: code`` of the script's line that raised ``exc``, if any."""
    f = _last_frame(path, exc)
    return f"{path}:{f.lineno}: {(f.line or '').strip()}" if f else None


def primitives(sch: Any) -> list[str]:
    """The primitives applied to ``sch``, as ``print(sch)`` lists them."""
    lines = [ln.strip() for ln in str(sch).splitlines()[1:]]
    return [ln for ln in lines if ln and ln != "(original order)"]
