"""What is tuned: a ``Task`` gives the space, checks a point (legality, in the
tuner's process), builds it (in a measuring process), makes the inputs and
the reference output the measurement compares with.

``KernelTask`` tunes a ``@polyop.kernel`` through a template at fixed sizes;
its reference is the kernel under its default schedule (the source order,
itself checked against CPython by polyop's tests), computed once per
measuring process. ``polyop.tune.ops_tasks`` holds the operators' tasks.

Tasks travel to other processes by pickle: a kernel and a template are sent
by name (module and qualified name) and imported there, so they must be
defined at the top level of an importable module.

Example::

    >>> task = KernelTask(default_template, example_scale, {"n": 8})
    >>> len(task.space()) > 1
    True
"""

from __future__ import annotations

import json

import numpy as np

from ..api import build, lower
from ..errors import PolyopError
from ..kernel import kernel
from ..schedule import Schedule
from .space import Config, ConfigSpace, TuneError, apply_split, by_name, resolve, template

__all__ = ["KernelTask", "Task", "auto_template", "default_template"]


class Task:
    """The interface the tuner and the measuring processes use (module docstring)."""

    #: identifies the task in logs: a resumed run must have the same key
    key: str = "task"
    #: the target the candidates are compiled for ("cpu": the measuring host)
    target: str = "cpu"
    #: floating-point operations of one run (for GFLOP/s), or None
    flops: int | None = None
    #: relative tolerance of the output check
    rtol: float = 1e-4

    def space(self) -> ConfigSpace:
        raise NotImplementedError

    def check(self, config: Config) -> list[str]:
        """The point's schedule trace; raises a ``PolyopError`` for an illegal point."""
        raise NotImplementedError

    def build(self, config: Config):
        """A callable running the point's code on ``inputs()``."""
        raise NotImplementedError

    def inputs(self) -> list:
        """Fresh arguments of one run (same values every time)."""
        raise NotImplementedError

    def outputs(self, args: list) -> list[np.ndarray]:
        """The arrays of ``args`` the run writes (compared with ``reference``)."""
        raise NotImplementedError

    def reference(self) -> list[np.ndarray]:
        """The expected ``outputs`` (computed independently of the candidates)."""
        raise NotImplementedError

    def features(self, config: Config) -> dict[str, float]:
        """Task-specific features for the cost model (beyond the knobs)."""
        return {}

    def initial_points(self) -> list[dict]:
        """Points (knob values) measured before any the strategy proposes: the
        task's own heuristic choice, so that a search never ends worse than it."""
        return []


@template
def default_template(cfg, kernel):
    """A generic space for a kernel: for each statement's loop nest, the
    innermost two loops split (powers of two), the outer split loop order
    swapped or not, the outermost loop parallel or not, the innermost
    vectorized or not."""
    sch = Schedule(kernel)
    done = set()
    for stmt in sch.stmts:
        loops = sch.get_loops(stmt)
        if not loops or loops[0].id in done:
            continue
        done.add(loops[0].id)
        inner = loops[-2:]
        splits = []
        for k, lp in enumerate(inner):
            f = cfg.define_split(f"{stmt}_split{k}", lp, policy="power2", max_factor=64)
            splits.append(apply_split(sch, lp, f))
        if len(splits) == 2 and cfg.define_knob(f"{stmt}_tile", [False, True]):
            sch.reorder(splits[0][0], splits[1][0], splits[0][1], splits[1][1])
        if cfg.define_knob(f"{stmt}_parallel", [False, True]):
            sch.parallel(sch.get_loops(stmt)[0])
        if cfg.define_knob(f"{stmt}_vectorize", [False, True]):
            sch.vectorize(sch.get_loops(stmt)[-1])
    return sch


@template
def auto_template(cfg, kernel):
    """The space of ``polyop.auto_schedule``'s decisions (``auto_knobs``): one
    knob per decision, its candidates with the heuristic's choice first, so
    that the first point of the space is the automatic schedule.

    A decision naming a loop (which loop is parallel) has candidates that
    depend on earlier decisions (tiling renames ``i`` to ``i_outer``): such a
    knob holds a position among the candidates of the point's own run (0: the
    heuristic's choice, then the others), found by a first run with the other
    knobs set (positions past the end take the last candidate)."""
    from ..autoschedule import auto_knobs, auto_schedule

    if isinstance(cfg, Config):  # a point: its values are the overrides
        values = {k: v for k, v in cfg.values.items() if not k.startswith("#")}
        positions = {k[1:]: v for k, v in cfg.values.items() if k.startswith("#")}
        if positions:
            for knob in auto_knobs(kernel, cfg.target, cfg.sizes, knobs=values):
                if knob.name in positions and knob.candidates:
                    ranked = [knob.chosen] + [c for c in knob.candidates if c != knob.chosen]
                    values[knob.name] = ranked[min(positions[knob.name], len(ranked) - 1)]
        return auto_schedule(kernel, cfg.target, knobs=values, sizes=cfg.sizes)
    values = {}
    for knob in auto_knobs(kernel, cfg.target, cfg.sizes):
        if not knob.candidates:
            continue
        rest = [c for c in knob.candidates if c != knob.chosen]
        if any(isinstance(c, str) for c in knob.candidates):  # names a loop
            cfg.define_knob("#" + knob.name, list(range(len(knob.candidates))))
        else:
            values[knob.name] = cfg.define_knob(knob.name, [knob.chosen, *rest])
    return auto_schedule(kernel, cfg.target, knobs=values, sizes=cfg.sizes)


class KernelTask(Task):
    """A ``@polyop.kernel`` at fixed ``sizes`` under a ``template`` (default:
    ``default_template``); scalars take fixed values, arrays seeded random ones."""

    def __init__(self, template, kernel, sizes: dict[str, int] | None = None,
                 target: str = "cpu", rtol: float = 1e-4):
        self.template, self.kernel = template, kernel
        self.sizes, self.target, self.rtol = dict(sizes or {}), target, rtol
        program = kernel.program
        missing = [p for p in program.params if p not in self.sizes]
        if missing:
            raise TuneError(f"tune {program.name}: give the sizes {missing} (sizes=)")
        self.key = (f"{_label(kernel)}:{_label(template)}:"
                    + ",".join(f"{k}={v}" for k, v in sorted(self.sizes.items())))
        self._space: ConfigSpace | None = None

    def __getstate__(self) -> dict:
        # the kernel and template by name: a Kernel carries isl objects
        state = {k: v for k, v in self.__dict__.items() if k not in ("kernel", "template")}
        state["_space"] = None
        return {**state, "kernel_ref": by_name(self.kernel),
                "template_ref": by_name(self.template)}

    def __setstate__(self, state: dict) -> None:
        kernel_ref, template_ref = state.pop("kernel_ref"), state.pop("template_ref")
        self.__dict__.update(state)
        self.kernel, self.template = resolve(*kernel_ref), resolve(*template_ref)

    def space(self) -> ConfigSpace:
        if self._space is None:
            space = ConfigSpace(self.sizes, self.target).collect(self.template, self.kernel)
            if not space.knobs:
                why = f" before {type(space.error).__name__}: {space.error}" if space.error \
                    else ""
                raise TuneError(f"template {_label(self.template)} defines no knob{why}")
            self._space = space
        return self._space

    def schedule(self, config: Config):
        return self.template(config, self.kernel)

    def check(self, config: Config) -> list[str]:
        return trace_of(self.schedule(config))

    def build(self, config: Config):
        return build(self.schedule(config))

    def inputs(self) -> list:
        return kernel_inputs(self.kernel.program, self.sizes)

    def outputs(self, args: list) -> list[np.ndarray]:
        program = self.kernel.program
        written = program.written_arrays()
        return [v for a, v in zip(program.arguments, args)
                if a.kind == "array" and a.name in written]

    def reference(self) -> list[np.ndarray]:
        args = self.inputs()
        build(Schedule(self.kernel))(*args)
        return self.outputs(args)

    def features(self, config: Config) -> dict[str, float]:
        from .model import ir_features

        try:
            fn = lower(self.schedule(config), validate=False)
        except PolyopError:
            return {}
        return ir_features(fn, self.sizes)


def _label(obj) -> str:
    """``module.qualname`` of a kernel or template, for task keys."""
    fn = getattr(obj, "py_func", None) or getattr(obj, "fn", None) or obj
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def trace_of(sch) -> list:
    """The replayable record of a schedule: its JSON trace where the schedule
    has one (``sch.trace``), else the primitives as ``print(sch)`` lists them."""
    to_text = getattr(sch, "trace_json", None)
    if to_text is not None:
        return json.loads(to_text())
    trace = getattr(sch, "trace", None)
    if trace is not None:
        to_json = getattr(trace, "to_json", None)
        if to_json is not None:
            return to_json()
        try:
            return [t.to_json() if hasattr(t, "to_json") else str(t) for t in trace]
        except TypeError:
            pass
    return [line.strip() for line in str(sch).splitlines()[1:]]


def kernel_inputs(program, sizes: dict[str, int], seed: int = 0) -> list:
    """Arguments of ``program`` in signature order: ``sizes``, scalars 1.25
    (ints 3), arrays random in [0.5, 1.5) (ints 0..9) from ``seed``, each
    aligned to a cache line (``polyop.aligned``: every candidate is timed on
    the same alignment, not on whatever ``malloc`` gave its process)."""
    from ..runtime import aligned, eval_index

    rng = np.random.default_rng(seed)
    args: list = []
    for a in program.arguments:
        if a.kind == "size":
            args.append(int(sizes[a.name]))
        elif a.kind == "scalar":
            args.append(1.25 if a.dtype.is_float else 3)
        else:
            arr = program.arrays[a.name]
            shape = tuple(eval_index(e, sizes) for e in arr.extents)
            dt = arr.dtype.numpy
            values = rng.random(shape) + 0.5 if arr.dtype.is_float else \
                rng.integers(0, 10, shape)
            args.append(aligned(values.astype(dt)))
    return args


@kernel
def example_scale(n: int, x: "f64[n, n]", y: "f64[n, n]"):  # noqa: F821, UP037
    """A small kernel for examples and tests (importable by measuring processes)."""
    for i in range(n):
        for j in range(n):
            y[i, j] = 2.0 * x[i, j]
