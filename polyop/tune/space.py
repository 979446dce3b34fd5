"""Search spaces: knobs declared by a schedule template, and the points of their product.

A *template* is a function ``(cfg, kernel) -> Schedule``. It declares its
knobs on ``cfg`` and uses the values it gets back:

- ``cfg.define_split(name, extent_or_loop, num_outputs=2, policy=...)``: the
  inner factors of a split into ``num_outputs`` loops (a tuple of
  ``num_outputs - 1`` ints, outermost first); ``policy`` is ``"power2"``
  (powers of two, product at most the extent), ``"factors"`` (exact divisors)
  or an explicit ``candidates`` list;
- ``cfg.define_knob(name, values)``: one value of a list (ints, floats,
  strings, bools);
- ``cfg.define_reorder(name, loops, policy="all" | candidates)``: a
  permutation of ``range(len(loops))``.

The template runs once with a ``ConfigSpace`` that records the knobs (each
``define_*`` then returns its first candidate), then once per point with a
``Config`` holding that point's values. A point is also a flat index in the
mixed-radix product of the knobs (definition order, last knob fastest),
which is what a grid search walks.

Example::

    >>> space = ConfigSpace()
    >>> space.define_split("tile", 16, policy="power2")
    (1,)
    >>> space.define_knob("vec", [False, True])
    False
    >>> len(space), space.get(9).values
    (10, {'tile': (16,), 'vec': True})
    >>> space.index_of({"tile": [16], "vec": True})
    9
"""

from __future__ import annotations

import functools
import importlib
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import PolyopError

__all__ = ["Config", "ConfigSpace", "Knob", "Template", "TuneError", "apply_reorder",
           "apply_split", "by_name", "template"]


class TuneError(PolyopError):
    """Bad input to the tuner: an unknown or redefined knob, a space whose every
    point is illegal, a log written for another task, a runner that cannot start."""


@dataclass(frozen=True)
class Knob:
    """One knob: its ``kind`` (split, knob, reorder) and its candidate values."""

    name: str
    kind: str
    candidates: tuple

    def encode(self, value) -> int:
        """The position of ``value`` (JSON's lists accepted for tuples) among the candidates."""
        value = _freeze(value)
        try:
            return self.candidates.index(value)
        except ValueError:
            raise TuneError(f"knob {self.name!r}: {value!r} is not one of its "
                            f"{len(self.candidates)} candidates") from None


def _freeze(value):
    """JSON's lists back to tuples, so that logged values compare equal to candidates."""
    return tuple(_freeze(v) for v in value) if isinstance(value, (list, tuple)) else value


def split_candidates(extent: int, num_outputs: int = 2, policy: str = "power2",
                     max_factor: int | None = None) -> list[tuple[int, ...]]:
    """Inner factors of a split of ``extent`` into ``num_outputs`` loops.

    Example::

        >>> split_candidates(12, policy="factors")
        [(1,), (2,), (3,), (4,), (6,), (12,)]
        >>> split_candidates(8, 3, "power2")[:4]
        [(1, 1), (1, 2), (1, 4), (1, 8)]
    """
    if policy not in ("power2", "factors"):
        raise TuneError(f"define_split: policy must be 'power2' or 'factors', got {policy!r}")
    if not isinstance(extent, int) or extent < 1:
        raise TuneError(f"define_split: the extent must be a positive int, got {extent!r}")
    if not isinstance(num_outputs, int) or num_outputs < 2:
        raise TuneError(f"define_split: num_outputs must be an int >= 2, got {num_outputs!r}")
    top = min(extent, max_factor or extent)
    if policy == "power2":
        one = [1 << k for k in range(top.bit_length()) if 1 << k <= top]
    else:
        one = [d for d in range(1, top + 1) if extent % d == 0]
    out = []
    for combo in itertools.product(one, repeat=num_outputs - 1):
        product = math.prod(combo)
        if product <= extent and (policy == "power2" or extent % product == 0):
            out.append(combo)
    return out


class _Definitions:
    """What ``ConfigSpace`` and ``Config`` share: the ``define_*`` calls of a template."""

    sizes: dict[str, int]
    target: str

    def define_split(self, name: str, extent, num_outputs: int = 2, policy: str = "power2",
                     candidates: Sequence | None = None, max_factor: int | None = None,
                     schedule=None) -> tuple[int, ...]:
        """Declare (or read) a split knob over a loop of ``extent`` iterations.
        ``extent`` may be a ``Loop`` of ``schedule`` (its extent at the
        task's sizes). Returns the inner factors, outermost first."""
        if candidates is None:
            if not isinstance(extent, int):
                extent = loop_extent(schedule or extent._schedule, extent, self.sizes)
            candidates = split_candidates(extent, num_outputs, policy, max_factor)
        return self._define(name, "split", [_freeze(c) for c in candidates])

    def define_knob(self, name: str, values: Sequence):
        """Declare (or read) a knob taking one of ``values``."""
        return self._define(name, "knob", list(values))

    def define_reorder(self, name: str, loops, policy: str = "all",
                       candidates: Sequence | None = None) -> tuple[int, ...]:
        """Declare (or read) a permutation of ``loops`` (a list of loops or their
        number): ``policy="all"`` every permutation, or the ``candidates`` given."""
        n = loops if isinstance(loops, int) else len(loops)
        if candidates is None:
            if policy != "all":
                raise TuneError(f"define_reorder {name!r}: policy must be 'all' or give "
                                f"candidates, got {policy!r}")
            candidates = list(itertools.permutations(range(n)))
        for c in candidates:
            if sorted(c) != list(range(n)):
                raise TuneError(f"define_reorder {name!r}: {c!r} is not a permutation of "
                                f"range({n})")
        return self._define(name, "reorder", [tuple(c) for c in candidates])

    def _define(self, name: str, kind: str, candidates: list):
        raise NotImplementedError


class ConfigSpace(_Definitions):
    """The knobs a template declares, in order; a point is a ``Config``."""

    def __init__(self, sizes: dict[str, int] | None = None, target: str = "cpu"):
        self.sizes, self.target = dict(sizes or {}), target
        self.knobs: dict[str, Knob] = {}
        self._preset: dict = {}
        self._this_pass: set[str] = set()
        #: the first error a run of the template raised while collecting knobs
        self.error: PolyopError | None = None

    def _define(self, name: str, kind: str, candidates: list):
        if not candidates:
            raise TuneError(f"knob {name!r} has no candidate value")
        if name in self._this_pass:
            raise TuneError(f"knob {name!r} is defined twice")
        self._this_pass.add(name)
        if name in self.knobs:
            return self._preset.get(name, self.knobs[name].candidates[0])
        self.knobs[name] = Knob(name, kind, tuple(candidates))
        return candidates[0]

    def collect(self, template: Callable, kernel, probes: int = 64) -> ConfigSpace:
        """Run ``template`` to record its knobs. Where the first run stops at
        an illegal primitive (a ``PolyopError``), knobs defined after it are
        found by runs at other points of the knobs known so far (up to
        ``probes`` runs), until one runs through."""
        for k in range(probes + 1):
            if k:
                if k - 1 >= len(self):
                    break
                self._preset = self.get(k - 1).values
            self._this_pass = set()
            try:
                template(self, kernel)
                break
            except PolyopError as e:
                self.error = self.error or e
                continue
        self._preset, self._this_pass = {}, set()
        return self

    def __len__(self) -> int:
        return math.prod(len(k.candidates) for k in self.knobs.values())

    def get(self, index: int) -> Config:
        """The point at flat ``index`` (mixed radix, the last knob fastest)."""
        if not 0 <= index < len(self):
            raise TuneError(f"point {index} outside the space of {len(self)} points")
        values = {}
        for knob in reversed(list(self.knobs.values())):
            index, pos = divmod(index, len(knob.candidates))
            values[knob.name] = knob.candidates[pos]
        return Config(self, {k: values[k] for k in self.knobs})

    def index_of(self, values: dict) -> int:
        """The flat index of the point with these knob values (as logged)."""
        missing = set(self.knobs) - set(values)
        extra = set(values) - set(self.knobs)
        if missing or extra:
            raise TuneError(f"knobs {sorted(values)} do not match the space's "
                            f"{list(self.knobs)}")
        index = 0
        for knob in self.knobs.values():
            index = index * len(knob.candidates) + knob.encode(values[knob.name])
        return index

    def positions(self, index: int) -> list[int]:
        """The candidate position of each knob at flat ``index``."""
        out = []
        for knob in reversed(list(self.knobs.values())):
            index, pos = divmod(index, len(knob.candidates))
            out.append(pos)
        return out[::-1]

    def from_positions(self, positions: Sequence[int]) -> int:
        index = 0
        for knob, pos in zip(self.knobs.values(), positions):
            index = index * len(knob.candidates) + pos
        return index

    def __repr__(self) -> str:
        parts = ", ".join(f"{k.name}: {len(k.candidates)}" for k in self.knobs.values())
        return f"ConfigSpace({len(self)} points; {parts})"


class Config(_Definitions):
    """One point of a space: ``values`` by knob name; ``define_*`` return them."""

    def __init__(self, space: ConfigSpace, values: dict):
        self.space, self.values = space, dict(values)
        self.sizes, self.target = space.sizes, space.target

    def _define(self, name: str, kind: str, candidates: list):
        if name not in self.values:
            raise TuneError(f"knob {name!r} was not defined when the space was built "
                            "(a template must define the same knobs on every path)")
        return self.values[name]

    def __getitem__(self, name: str):
        return self.values[name]

    @property
    def index(self) -> int:
        return self.space.index_of(self.values)

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.values.items()}

    def __repr__(self) -> str:
        return f"Config({self.values})"


def loop_extent(sch, loop, sizes: dict[str, int]) -> int:
    """The number of iterations of ``loop`` of ``sch`` at ``sizes`` (the largest
    over the values of its outer loops)."""
    import islpy as isl

    from ..schedule.tree import find_mark

    mark = find_mark(sch.tree.get_root(), loop.id)
    if mark is None:
        raise TuneError(f"define_split: loop {loop.name} is not in the schedule")
    band = mark.child(0)
    values = band.get_domain().apply(band.band_get_partial_schedule_union_map())
    values = isl.Set.from_union_set(values.coalesce()) if values.n_set() == 1 else None
    if values is None:
        raise TuneError(f"define_split: loop {loop.name} runs several statements' "
                        "iterations in different spaces; give its extent as an int")
    names = [values.get_dim_name(isl.dim_type.param, k)
             for k in range(values.dim(isl.dim_type.param))]
    for k, name in enumerate(names):
        if name in sizes:
            values = values.fix_val(isl.dim_type.param, k, isl.Val(str(int(sizes[name]))))
    if not set(names) <= set(sizes):
        raise TuneError(f"define_split: the extent of loop {loop.name} depends on sizes "
                        "not given to the tuner (pass sizes=)")
    values = values.project_out(isl.dim_type.param, 0, len(names))
    lo, hi = values.lexmin().sample_point(), values.lexmax().sample_point()
    first = lo.get_coordinate_val(isl.dim_type.set, 0).to_python()
    last = hi.get_coordinate_val(isl.dim_type.set, 0).to_python()
    return int(last - first + 1)


def apply_split(sch, loop, factors: Sequence[int]) -> list:
    """Split ``loop`` of ``sch`` by a split knob's inner ``factors`` (outermost
    first): ``len(factors) + 1`` loops, outermost first."""
    out = []
    for k in range(len(factors)):
        outer, loop = sch.split(loop, math.prod(factors[k:]))
        out.append(outer)
    return out + [loop]


def apply_reorder(sch, loops: Sequence, order: Sequence[int]) -> list:
    """Reorder ``loops`` by a reorder knob's permutation; returns them in the new order."""
    new = [loops[k] for k in order]
    if list(order) != sorted(order):
        sch.reorder(*new)
    return new


def by_name(obj) -> tuple[str, str]:
    """(module, qualified name) of a top-level function, kernel or template: how
    tasks name what they run so that another process can import it."""
    fn = getattr(obj, "py_func", None) or getattr(obj, "fn", None) or obj
    module, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if module is None or "<locals>" in qual or "<lambda>" in qual:
        raise TuneError(f"{qual or obj!r}: measured in other processes, a kernel or template "
                        "must be defined at the top level of an importable module")
    return module, qual


@functools.cache
def resolve(module: str, qual: str):
    """The object ``by_name`` named (imported in this process)."""
    obj = importlib.import_module(module)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


class Template:
    """A schedule template: ``fn(cfg, kernel) -> Schedule`` (``@polyop.tune.template``)."""

    def __init__(self, fn: Callable):
        self.fn = fn
        functools.update_wrapper(self, fn)

    def __call__(self, cfg, kernel):
        return self.fn(cfg, kernel)

    def __reduce__(self):
        return resolve, by_name(self)

    def __repr__(self) -> str:
        return f"<polyop.tune.template {self.fn.__qualname__}>"


def template(fn: Callable) -> Template:
    """Mark ``fn(cfg, kernel) -> Schedule`` as a schedule template (module docstring).

    Example::

        >>> @template
        ... def split_only(cfg, k):
        ...     return k
        >>> split_only
        <polyop.tune.template split_only>
    """
    return Template(fn)
