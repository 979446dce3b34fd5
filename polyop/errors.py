"""User-facing errors. Internal invariants use ``assert``; these are for bad input."""

from __future__ import annotations


class PolyopError(Exception):
    """Base class of every error polyop raises for bad input."""


class FrontendError(PolyopError):
    """Source code outside the kernel language; the message names file, line, column."""

    def __init__(self, msg: str, filename: str = "<unknown>", line: int = 0, col: int = 0):
        self.filename, self.line, self.col, self.reason = filename, line, col, msg
        super().__init__(f"{filename}:{line}:{col}: {msg}")


class BoundsError(PolyopError):
    """An access that can leave its array's shape, found at compile time."""

    def __init__(self, msg: str, stmt: str, array: str, instance: str):
        self.stmt, self.array, self.instance = stmt, array, instance
        super().__init__(msg)


class ArgumentError(PolyopError, TypeError):
    """A call argument that does not match the kernel's signature."""

    def __init__(self, msg: str, argument: str):
        self.argument = argument
        super().__init__(msg)


class ScheduleError(PolyopError):
    """A schedule primitive used wrongly (unknown or stale loop, bad arguments)."""


class IllegalScheduleError(ScheduleError):
    """A primitive that would break a dependence; the schedule is left unchanged.

    ``kind`` (RAW/WAR/WAW), ``array``, ``source`` and ``sink`` (instances such as
    ``S0[i=1, j=2]``, sampled by isl from the violated dependence), ``loop`` (the
    loop whose order or parallelism breaks it) and ``violations`` (all of them).
    """

    def __init__(self, msg: str, violations: list):
        first = violations[0]
        self.kind, self.array = first.kind, first.array
        self.source, self.sink, self.loop = first.source, first.sink, first.loop
        self.violations = violations
        super().__init__(msg)

    def _repr_html_(self) -> str:
        """Jupyter's view: the message and every violation (``polyop.viz.html``)."""
        from .viz.html import error_html

        return error_html(self)


class TargetError(PolyopError, ValueError):
    """A target that cannot be used: an unknown kind, CPU, feature or option
    (the message names it), or code compiled for another machine called here."""


class TargetUnavailableError(TargetError):
    """A target whose hardware, driver or runtime is missing on this machine
    (``target="cuda"`` without a GPU or CUDA driver, ``"opencl"`` without an
    OpenCL platform): raised when building or running for it, never at import."""


class CodegenError(PolyopError):
    """Generated code that would not run what the schedule says: a statement
    instance ``missing``, ``extra`` (outside the domain), ``duplicated``, or a
    dependence ``misordered``. Found by validating isl's AST (``polyop.validate``);
    a bug of polyop or isl, never of the user's kernel.

    ``stmt`` names the statement, ``instance`` the instance (or ``source ->
    sink`` pair) and ``problem`` which of the four it is.
    """

    def __init__(self, msg: str, stmt: str, instance: str, problem: str):
        self.stmt, self.instance, self.problem = stmt, instance, problem
        super().__init__(msg)


class SettingError(PolyopError, ValueError):
    """A setting outside its accepted values: an environment variable
    (``POLYOP_NUM_THREADS=0``) or a call (``set_num_threads(-1)``, ``threads=0``);
    ``setting`` names it (``polyop.settings``)."""

    def __init__(self, msg: str, setting: str):
        self.setting = setting
        super().__init__(msg)
