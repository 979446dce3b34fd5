"""The cost model of the model-guided search: features of a point, and
gradient-boosted trees (scikit-learn's ``GradientBoostingRegressor``)
trained on the log of the measured times.

Features of a point:

- its knobs: the log2 of each split factor, a numeric knob's value (a bool as
  0/1, a string as its position), each loop's position in a reorder; for a
  factor or knob of more than two values also an indicator of each value;
- the task's own (``Task.features``): for a kernel, features of the loop IR
  the point lowers to (``ir_features``): loops by kind, depth, the constant
  extents of the innermost loops, the strides of the accesses in innermost
  loops (unit, zero, other) and the bytes those loops touch per iteration of
  the loop above them (a footprint); for an operator, its tile's registers
  and cache footprints against the target's.

Example::

    >>> from polyop.tune.space import ConfigSpace
    >>> space = ConfigSpace(); _ = space.define_split("t", 8); _ = space.define_knob("v", [0, 1])
    >>> knob_features(space.get(7))
    {'t.0': 3.0, 't.0==1': 0.0, 't.0==2': 0.0, 't.0==4': 0.0, 't.0==8': 1.0, 'v': 1.0}
"""

from __future__ import annotations

import math
from dataclasses import fields, is_dataclass

import numpy as np

from .. import ir
from ..kinds import LoopKind

__all__ = ["CostEnsemble", "CostModel", "ir_features", "knob_features"]


def knob_features(config) -> dict[str, float]:
    """The knob part of a point's features (module docstring)."""
    out: dict[str, float] = {}
    for knob in config.space.knobs.values():
        v = config.values[knob.name]
        if knob.kind == "split":
            for k, f in enumerate(v):
                out[f"{knob.name}.{k}"] = math.log2(f)
                out.update(_one_hot(f"{knob.name}.{k}", f, {c[k] for c in knob.candidates}))
        elif knob.kind == "reorder":
            for pos, loop in enumerate(v):
                out[f"{knob.name}.{loop}"] = float(pos)
        else:
            pos = knob.candidates.index(v)
            out[knob.name] = float(v) if isinstance(v, (bool, int, float)) else float(pos)
            # by position: candidates may mix types (an unroll knob's None, 2, 4, 8)
            out.update(_one_hot(knob.name, pos, set(range(len(knob.candidates)))))
    return out


def _one_hot(name: str, value, values: set) -> dict[str, float]:
    """An indicator per value (a factor, or a knob's candidate position) of a
    knob with more than two: a tree then
    singles out one value (a split factor of 1, i.e. no split, or one tile
    size that fits the registers) with one test, where on the numeric
    feature a value in the middle of the range takes two tests, and with
    few measurements the trees seldom make the second."""
    if len(values) <= 2:
        return {}
    return {f"{name}=={c}": float(c == value) for c in sorted(values)}


def _value(e, env: dict[str, int]) -> int | None:
    """An integer expression of the loop IR at ``env`` (None if not affine-evaluable)."""
    if isinstance(e, ir.Const):
        return int(e.value) if isinstance(e.value, (int, np.integer)) else None
    if isinstance(e, ir.Var):
        return env.get(e.name, 0)
    if isinstance(e, ir.Neg):
        a = _value(e.a, env)
        return None if a is None else -a
    if isinstance(e, ir.Cast):
        return _value(e.a, env)
    if isinstance(e, ir.Bin):
        a, b = _value(e.a, env), _value(e.b, env)
        if a is None or b is None:
            return None
        if e.op in ("fdiv", "mod") and b == 0:
            return None
        ops = {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
               "min": lambda: min(a, b), "max": lambda: max(a, b),
               "fdiv": lambda: a // b, "mod": lambda: a % b}
        return ops[e.op]() if e.op in ops else None
    return None


def _children(node) -> list:
    out = []
    for f in fields(node):
        v = getattr(node, f.name)
        for x in v if isinstance(v, tuple) else (v,):
            if is_dataclass(x) and not isinstance(x, type):
                out.append(x)
    return out


def _loops(node, depth: int = 0, out: list | None = None) -> list[tuple[ir.For, int, bool]]:
    """Every ``For`` below ``node`` with its depth and whether it is innermost."""
    out = [] if out is None else out
    for kid in _children(node):
        if isinstance(kid, ir.For):
            before = len(out)
            out.append((kid, depth + 1, True))
            _loops(kid, depth + 1, out)
            if len(out) > before + 1:
                out[before] = (kid, depth + 1, False)
        else:
            _loops(kid, depth, out)
    return out


def ir_features(fn: ir.Function, sizes: dict[str, int]) -> dict[str, float]:
    """Features of a lowered kernel (module docstring)."""
    loops = _loops(fn)
    kinds = {k: 0 for k in (LoopKind.PARALLEL, LoopKind.VECTOR, LoopKind.UNROLL)}
    for f, _, _ in loops:
        if f.kind in kinds:
            kinds[f.kind] += 1
    sizes = dict(sizes)
    unit = zero = other = 0
    extents, footprint = [], 0.0
    for f, _, inner in loops:
        if not inner:
            continue
        lo, hi = _value(f.start, sizes), _value(f.stop, sizes)
        trip = max(0, (hi - lo + f.step - 1) // f.step) if lo is not None and hi is not None \
            else 0
        extents.append(trip)
        for n in ir.walk(f.body):
            if isinstance(n, (ir.Load, ir.Store)) and n.index:
                at0 = [_value(x, {**sizes, f.var: 0}) for x in n.index]
                at1 = [_value(x, {**sizes, f.var: f.step}) for x in n.index]
                if None in at0 or None in at1:
                    continue
                diff = [b - a for a, b in zip(at0, at1)]
                if not any(diff):
                    zero += 1
                elif diff[-1] in (1, -1) and not any(diff[:-1]):
                    unit += 1
                    dtype = n.dtype if isinstance(n, ir.Load) else n.value.dtype
                    footprint += trip * dtype.bits / 8
                else:
                    other += 1
                    footprint += trip * 64  # a cache line per iteration
    total = max(1, unit + zero + other)
    depth = max((d for _, d, _ in loops), default=0)
    return {"ir.loops": float(len(loops)), "ir.depth": float(depth),
            "ir.parallel": float(kinds[LoopKind.PARALLEL]),
            "ir.vector": float(kinds[LoopKind.VECTOR]),
            "ir.unroll": float(kinds[LoopKind.UNROLL]),
            "ir.inner_log2_extent": math.log2(1 + (sum(extents) / len(extents)
                                                   if extents else 0)),
            "ir.unit_stride": unit / total, "ir.zero_stride": zero / total,
            "ir.other_stride": other / total,
            "ir.log2_footprint": math.log2(1 + footprint)}


class CostModel:
    """Gradient-boosted trees predicting log(seconds) from a point's features."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.names: list[str] = []
        self._model = None

    def matrix(self, rows: list[dict[str, float]]) -> np.ndarray:
        return np.array([[r.get(n, 0.0) for n in self.names] for r in rows], np.float64)

    def fit(self, rows: list[dict[str, float]], seconds: list[float]) -> CostModel:
        from sklearn.ensemble import GradientBoostingRegressor

        self.names = sorted({n for r in rows for n in r})
        # exact trees, not the histogram variant: a log holds tens to hundreds of
        # points, where HistGradientBoostingRegressor's OpenMP threads cost more
        # than the fit (24 points, 40 predictions on 2 loaded cores: 17 s vs 0.5 s);
        # small leaves, or trees on few samples would not split at all
        self._model = GradientBoostingRegressor(
            n_estimators=100, learning_rate=0.1, min_samples_leaf=2, max_leaf_nodes=15,
            subsample=1.0, random_state=self.seed)
        self._model.fit(self.matrix(rows), np.log(np.asarray(seconds, np.float64)))
        return self

    def predict(self, rows: list[dict[str, float]]) -> np.ndarray:
        """Predicted log(seconds) of each row (lower is faster)."""
        assert self._model is not None, "fit the model first"
        return self._model.predict(self.matrix(rows))

    def importance(self) -> dict[str, float]:
        """Each feature's share of the trees' reduction of the error (sums to 1,
        or all 0 when no tree split)."""
        assert self._model is not None, "fit the model first"
        return dict(zip(self.names, (float(x) for x in self._model.feature_importances_)))


class CostEnsemble:
    """``members`` cost models, each fitted on a bootstrap resample of the
    measurements: their mean is the prediction, their spread how unsure it
    is. Where few points were measured the resamples differ most, and so do
    the members' trees: the spread is large in the regions that the search
    has not looked at yet.

    Example::

        >>> e = CostEnsemble(seed=0, members=3).fit(
        ...     [{"x": float(x)} for x in range(8)], [1.0 + x for x in range(8)])
        >>> mean, spread = e.predict_spread([{"x": 2.0}])
        >>> bool(abs(mean[0] - math.log(3.0)) < 0.3 and spread[0] >= 0)
        True
    """

    def __init__(self, seed: int = 0, members: int = 5):
        self.seed, self.members = seed, members
        self._models: list[CostModel] = []

    def fit(self, rows: list[dict[str, float]], seconds: list[float]) -> CostEnsemble:
        rng = np.random.default_rng(self.seed)
        self._models = []
        for m in range(self.members):
            pick = rng.integers(0, len(rows), len(rows)) if m else np.arange(len(rows))
            self._models.append(CostModel(self.seed + m).fit([rows[i] for i in pick],
                                                             [seconds[i] for i in pick]))
        return self

    def importance(self) -> dict[str, float]:
        """The members' mean feature importance (``CostModel.importance``)."""
        each = [m.importance() for m in self._models]
        return {n: sum(e.get(n, 0.0) for e in each) / len(each) for n in each[0]}

    def predict(self, rows: list[dict[str, float]]) -> np.ndarray:
        """Mean predicted log(seconds) of each row."""
        return self.predict_spread(rows)[0]

    def predict_spread(self, rows: list[dict[str, float]]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation over the members of the predicted log(seconds)."""
        assert self._models, "fit the ensemble first"
        each = np.array([m.predict(rows) for m in self._models])
        return each.mean(axis=0), each.std(axis=0)
