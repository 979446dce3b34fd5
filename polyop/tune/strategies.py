"""Search strategies: which points of a space to measure next.

A strategy proposes batches of flat point indices (``propose(n, seen)``,
never a point in ``seen``; fewer, or none, when the space runs out) and
learns from results (``update``). With a fixed ``seed`` the sequence of
proposals is fixed: for ``random`` and ``grid`` whatever the measurements
say, for ``model`` given the same measurements.

- ``grid``: the points in index order;
- ``random``: a seeded random order without repetition;
- ``model``: random until ``warmup`` points are measured (12 by default:
  trees fitted on fewer know too little of the space to steer); then each
  batch comes from a cost model fitted on every measurement so far, an
  ensemble of gradient-boosted trees on bootstrap resamples
  (``polyop.tune.model.CostEnsemble``). Candidates: the points visited by
  simulated-annealing chains (they start at the best measured points and at
  random ones, move one knob at a time to a neighbouring candidate, or now
  and then any candidate, and accept a move by its predicted time at a
  falling temperature), and ``sample`` points drawn anywhere. They are
  ranked by a lower confidence bound, the ensemble's mean predicted
  log-time minus ``kappa`` times its spread, so that a region the model
  knows little about is tried before it is written off; points that differ
  from a measured one (or from another of the batch) only in knobs the
  model found of no effect are skipped. A share of random points
  (``explore``) completes the batch. Failed points are given a time worse than any
  measured, so the model learns to avoid them. The chains walk on a model of
  the knobs alone, cheap to evaluate at every step; when the task has
  features of its own (a kernel's loop IR, which costs a lowering per
  point), a second model over knobs and those features re-ranks the chains'
  best ``rerank`` times ``n`` points, so that only those are lowered.

Example::

    >>> from polyop.tune.space import ConfigSpace
    >>> space = ConfigSpace(); _ = space.define_knob("a", list(range(10)))
    >>> make_strategy("random", space, seed=1).propose(4, set())
    [6, 8, 9, 7]
    >>> make_strategy("grid", space).propose(3, {0})
    [1, 2, 3]
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from .model import CostEnsemble, CostModel, knob_features
from .space import ConfigSpace, TuneError

__all__ = ["GridSearch", "ModelSearch", "RandomSearch", "Strategy", "make_strategy"]


class Strategy:
    """The interface (module docstring)."""

    def __init__(self, space: ConfigSpace, seed: int = 0):
        self.space, self.seed = space, seed

    def propose(self, n: int, seen: set[int]) -> list[int]:
        raise NotImplementedError

    def update(self, results: list[tuple[int, float | None]]) -> None:
        """Learn from ``(index, seconds)`` pairs (None: failed or wrong)."""


class GridSearch(Strategy):
    def __init__(self, space: ConfigSpace, seed: int = 0):
        super().__init__(space, seed)
        self._next = 0

    def propose(self, n: int, seen: set[int]) -> list[int]:
        out = []
        while len(out) < n and self._next < len(self.space):
            if self._next not in seen:
                out.append(self._next)
            self._next += 1
        return out


class RandomSearch(Strategy):
    def __init__(self, space: ConfigSpace, seed: int = 0):
        super().__init__(space, seed)
        self.rng = random.Random(seed)
        size = len(space)
        # small spaces: one shuffled order; large ones: draws, repeats skipped
        self._order = self.rng.sample(range(size), size) if size <= 200_000 else None
        self._drawn: set[int] = set()

    def propose(self, n: int, seen: set[int]) -> list[int]:
        out: list[int] = []
        size = len(self.space)
        if self._order is not None:
            while len(out) < n and self._order:
                k = self._order.pop()
                if k not in seen and k not in out:
                    out.append(k)
            return out
        while len(out) < n and len(self._drawn) < size and len(seen) + len(out) < size:
            k = self.rng.randrange(size)
            if k not in self._drawn and k not in seen:
                out.append(k)
            self._drawn.add(k)
        return out


class ModelSearch(Strategy):
    """Cost-model-guided simulated annealing (module docstring)."""

    def __init__(self, space: ConfigSpace, seed: int = 0,
                 features: Callable | None = None, warmup: int | None = 12,
                 explore: float = 0.2, chains: int = 8, steps: int = 40,
                 rerank: int = 4, sample: int = 256, kappa: float = 2.0):
        super().__init__(space, seed)
        self.rng = random.Random(seed)
        self.random = RandomSearch(space, seed)
        self.extra = features
        self.warmup, self.explore, self.chains, self.steps = warmup, explore, chains, steps
        self.rerank, self.sample, self.kappa = rerank, sample, kappa
        self.measured: dict[int, float | None] = {}
        self._knobs: dict[int, dict[str, float]] = {}
        self._features: dict[int, dict[str, float]] = {}
        self.model = CostEnsemble(seed)  # over the knobs: drives the chains
        self.full = CostModel(seed)  # over the knobs and the task's features

    def knob_row(self, index: int) -> dict[str, float]:
        if index not in self._knobs:
            self._knobs[index] = knob_features(self.space.get(index))
        return self._knobs[index]

    def features(self, index: int) -> dict[str, float]:
        if index not in self._features:
            row = dict(self.knob_row(index))
            if self.extra is not None:
                row.update(self.extra(self.space.get(index)))
            self._features[index] = row
        return self._features[index]

    def update(self, results: list[tuple[int, float | None]]) -> None:
        self.measured.update(results)

    def propose(self, n: int, seen: set[int]) -> list[int]:
        good = {k: s for k, s in self.measured.items() if s is not None}
        if len(good) < max(4, self.warmup if self.warmup is not None else n):
            return self.random.propose(n, seen)
        worst = max(good.values())
        seconds = {k: (s if s is not None else worst * 4) for k, s in self.measured.items()}
        keys = sorted(seconds)
        times = [seconds[k] for k in keys]
        self.model.fit([self.knob_row(k) for k in keys], times)
        candidates = sorted(self._anneal(sorted(good, key=good.get), seen)
                            | set(self._sample(seen)))
        # optimism where the model is unsure: the lower confidence bound of the
        # predicted log-time (mean - kappa x spread over the ensemble)
        mean, spread = self.model.predict_spread([self.knob_row(k) for k in candidates])
        pool = {k: float(m - self.kappa * d) for k, m, d in zip(candidates, mean, spread)}
        n_random = min(n, max(1, round(n * self.explore))) if n > 1 else 0
        # trees predict the same time for a whole region of the space: ties are
        # broken by a seeded draw, not by index (which would always pick the
        # region's points with the smallest leading knobs, the same few each batch)
        tie = {k: self.rng.random() for k in sorted(pool)}
        ranked = sorted(pool, key=lambda k: (pool[k], tie[k]))
        if self.extra is not None and ranked:
            ranked = ranked[:max(n, self.rerank * n)]
            self.full.fit([self.features(k) for k in keys], times)
            again = self.full.predict([self.features(k) for k in ranked])
            ranked = [k for _, _, k in sorted(zip((float(x) for x in again),
                                                  (tie[k] for k in ranked), ranked))]
        picked = self._distinct(ranked, n - n_random)
        out = picked + self.random.propose(n - len(picked), seen | set(picked))
        return out[:n]

    def _distinct(self, ranked: list[int], n: int) -> list[int]:
        """The first ``n`` of ``ranked`` that differ from every measured point
        and from each other in a knob the model found to matter (a feature with
        at least a fifth of the largest importance): a point that
        differs only in knobs of no effect would be measured for nothing.
        When too few are distinct, the best of the rest fill the batch."""
        importance = self.model.importance()
        cut = 0.2 * max(importance.values(), default=0.0)
        names = sorted(f for f, v in importance.items() if v >= cut)

        def signature(k: int) -> tuple:
            row = self.knob_row(k)
            return tuple(row.get(f, 0.0) for f in names)

        taken = {signature(k) for k in self.measured}
        picked = []
        for k in ranked:
            if len(picked) == n:
                break
            sig = signature(k)
            if sig not in taken:
                taken.add(sig)
                picked.append(k)
        chosen = set(picked)
        rest = [k for k in ranked if k not in chosen]
        return picked + rest[:n - len(picked)]

    def _sample(self, seen: set[int]) -> list[int]:
        """Up to ``sample`` unseen points drawn uniformly: candidates in
        regions the chains did not walk through."""
        size = len(self.space)
        draws = range(size) if size <= self.sample else \
            (self.rng.randrange(size) for _ in range(self.sample))
        return [k for k in draws if k not in seen]

    def _neighbour(self, index: int) -> int:
        pos = self.space.positions(index)
        sizes = [len(k.candidates) for k in self.space.knobs.values()]
        movable = [d for d, s in enumerate(sizes) if s > 1]
        if not movable:
            return index
        d = self.rng.choice(movable)
        if self.rng.random() < 0.25:  # a jump anywhere along this knob
            pos[d] = self.rng.randrange(sizes[d])
        else:
            pos[d] = min(sizes[d] - 1, max(0, pos[d] + self.rng.choice((-1, 1))))
        return self.space.from_positions(pos)

    def _anneal(self, best_first: list[int], seen: set[int]) -> set[int]:
        """The unseen points the chains visit (module docstring)."""
        size = len(self.space)
        starts = best_first[: self.chains // 2]
        while len(starts) < self.chains:
            starts.append(self.rng.randrange(size))
        states = list(starts)
        scores = list(self.model.predict([self.knob_row(k) for k in states]))
        visited: set[int] = set()
        temperature = 1.0
        for _ in range(self.steps):
            moves = [self._neighbour(k) for k in states]
            predicted = self.model.predict([self.knob_row(k) for k in moves])
            for c, (k, p) in enumerate(zip(moves, predicted)):
                if k not in seen:
                    visited.add(k)
                delta = float(p) - scores[c]
                if delta <= 0 or self.rng.random() < math.exp(-delta / max(temperature, 1e-6)):
                    states[c], scores[c] = k, float(p)
            temperature *= 0.9
        return visited


def make_strategy(name: str, space: ConfigSpace, seed: int = 0,
                  features: Callable | None = None, **options) -> Strategy:
    """The strategy called ``name``: ``"random"``, ``"grid"`` or ``"model"``
    (``features``: the task's extra features of a point, for the model)."""
    if name == "random":
        return RandomSearch(space, seed)
    if name == "grid":
        return GridSearch(space, seed)
    if name == "model":
        return ModelSearch(space, seed, features, **options)
    raise TuneError(f"unknown strategy {name!r}: use 'random', 'grid' or 'model'")
