"""The operators' tiling knobs as tuning tasks, and ``tune_ops``, which tunes
a list of operator shapes and stores the best tilings in the operators'
database (``polyop.tune.database``), where ``polyop.ops.matmul`` and
``conv2d`` find them.

Knobs of ``matmul`` (``MatmulTiling``): the register tile's width in vectors
(2 or 3) and rows (``mr``, up to what the target's registers hold), the
slice depth in bytes (``kc``), the row block (``mb`` panels), packing ``A``
and the loop order (``columns_outer``). Knobs of ``conv2d`` (``ConvTiling``):
the tile's width and rows, the channel block (divisors of ``C``), the loop
orders, packing the weights inside the nest, and for GEMM-shaped
convolutions the vector dimension and packing of the input. The heuristic's
tiling (``MatmulTiling.default``) is a point of the space. A candidate's
output is checked against numpy, in float64.

Example::

    >>> task = matmul_task(64, 64, 64, target="cpu -mtriple=x86_64-linux-gnu -mcpu=haswell")
    >>> sorted(task.space().knobs)
    ['columns_outer', 'kc_bytes', 'mb', 'mr', 'pack_a', 'vectors']
    >>> task.tiling(task.space().get(0))
    MatmulTiling(mr=2, nr=16, kc=512, mb=4, pack_a=False, columns_outer=False)
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from ..ops.conv2d import ConvShape, ConvTiling, conv2d
from ..ops.conv_tiling import check_tiling
from ..ops.matmul import MatmulTiling, matmul, register_rows
from ..runtime import aligned
from ..target import as_target
from .database import conv2d_key, matmul_key, store
from .space import Config, ConfigSpace, TuneError
from .task import Task

__all__ = ["Conv2dTask", "MatmulTask", "conv2d_task", "conv_reference", "matmul_task",
           "tune_ops"]


class MatmulTask(Task):
    """``polyop.ops.matmul(M, N, K)`` over its tiling knobs (module docstring)."""

    rtol = 1e-4

    def __init__(self, M: int, N: int, K: int, dtype: str = "float32", threads: int = 1,
                 target: str = "cpu"):
        self.M, self.N, self.K, self.dtype, self.threads = M, N, K, dtype, threads
        self.target = str(as_target(target))
        self.key = matmul_key(M, N, K, dtype, threads)
        self.flops = 2 * M * N * K
        self._space: ConfigSpace | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_space": None}

    def space(self) -> ConfigSpace:
        if self._space is None:
            t = as_target(self.target)
            space = ConfigSpace({}, self.target)
            space.define_knob("vectors", [2, 3])
            space.define_knob("mr", list(range(2, register_rows(t, 2) + 1)))
            space.define_knob("kc_bytes", self._kc_choices())
            # the heuristic's row block, derived from the target's L2, is a point too
            default = MatmulTiling.default(self.dtype, self.K, self.N, self.threads, t)
            space.define_knob("mb", sorted({4, 8, 16, 32, default.mb}))
            space.define_knob("pack_a", [False, True])
            space.define_knob("columns_outer", [False, True])
            self._space = space
        return self._space

    def _kc_slices(self, kc_bytes: int) -> int:
        """The slices of ``K`` a slice depth makes (``matmul`` cuts ``K`` in equal
        slices, so two depths giving as many slices compile the same code)."""
        return -(-self.K // max(1, kc_bytes // np.dtype(self.dtype).itemsize))

    def _kc_choices(self) -> list[int]:
        """Slice depths in bytes, one per distinct slicing of ``K``: a duplicate
        would waste a trial on a point already measured under another name."""
        out: dict[int, int] = {}
        for kc_bytes in (2048, 4096, 8192, 16384):
            out.setdefault(self._kc_slices(kc_bytes), kc_bytes)
        return list(out.values())

    def tiling(self, config: Config) -> MatmulTiling:
        lanes = as_target(self.target).lanes(np.dtype(self.dtype).name)
        v = config.values
        return MatmulTiling(mr=v["mr"], nr=v["vectors"] * lanes,
                            kc=v["kc_bytes"] // np.dtype(self.dtype).itemsize, mb=v["mb"],
                            pack_a=v["pack_a"], columns_outer=v["columns_outer"])

    def knobs_of(self, tiling: MatmulTiling) -> dict:
        """The point of a tiling (``MatmulTiling.default``'s, say)."""
        lanes = as_target(self.target).lanes(np.dtype(self.dtype).name)
        kc_bytes = tiling.kc * np.dtype(self.dtype).itemsize
        same = [c for c in self._kc_choices() if self._kc_slices(c) == self._kc_slices(kc_bytes)]
        return {"vectors": tiling.nr // lanes, "mr": tiling.mr,
                "kc_bytes": same[0] if same else kc_bytes, "mb": tiling.mb,
                "pack_a": tiling.pack_a, "columns_outer": tiling.columns_outer}

    def initial_points(self) -> list[dict]:
        """The target heuristic's tiling (``MatmulTiling.default``)."""
        return [self.knobs_of(MatmulTiling.default(self.dtype, self.K, self.N, self.threads,
                                                   self.target))]

    def check(self, config: Config) -> list:
        t = self.tiling(config)
        return [f"polyop.ops.matmul({self.M}, {self.N}, {self.K}, {self.dtype!r}, "
                f"threads={self.threads}, tiling={t!r})"]

    def build(self, config: Config):
        return matmul(self.M, self.N, self.K, self.dtype, threads=self.threads,
                      tiling=self.tiling(config), target=self.target)

    def schedule(self, config: Config):
        return self.build(config).schedule

    def inputs(self) -> list:
        rng = np.random.default_rng(0)
        return [aligned(x) for x in (rng.random((self.M, self.K)).astype(self.dtype),
                                     rng.random((self.K, self.N)).astype(self.dtype),
                                     np.zeros((self.M, self.N), self.dtype))]

    def outputs(self, args: list) -> list[np.ndarray]:
        return [args[2]]

    def reference(self) -> list[np.ndarray]:
        a, b, _ = self.inputs()
        return [a.astype(np.float64) @ b.astype(np.float64)]

    def features(self, config: Config) -> dict[str, float]:
        """The tile's use of registers and caches against the target's."""
        t, tg = self.tiling(config), as_target(self.target)
        size = np.dtype(self.dtype).itemsize
        lanes = tg.lanes(np.dtype(self.dtype).name)
        regs = t.mr * (t.nr // lanes) + t.nr // lanes + 1
        kc = min(t.kc, self.K)
        return {"regs_over": regs / tg.vector_registers,
                "l1_share": kc * (t.nr + (t.mr if t.pack_a else 0)) * size / tg.l1d,
                "l2_share": t.mb * t.mr * kc * size / tg.l2,
                "aliased_rows": float((self.K * size) % 4096 == 0),
                "partial_rows": (-self.M % t.mr) / t.mr, "partial_cols": (-self.N % t.nr) / t.nr}


def matmul_task(M: int, N: int, K: int, dtype: str = "float32", threads: int = 1,
                target: str = "cpu") -> MatmulTask:
    """The tuning task of ``polyop.ops.matmul(M, N, K)`` (module docstring)."""
    return MatmulTask(M, N, K, dtype, threads, target)


class Conv2dTask(Task):
    """``polyop.ops.conv2d`` of one ``ConvShape`` over its tiling knobs."""

    rtol = 1e-4

    def __init__(self, shape: ConvShape, dtype: str = "float32", threads: int = 1,
                 target: str = "cpu"):
        shape.validate()
        self.shape, self.dtype, self.threads = shape, dtype, threads
        self.target = str(as_target(target))
        self.key = conv2d_key(shape, dtype, threads)
        self.flops = shape.flops
        self._space: ConfigSpace | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_space": None}

    def space(self) -> ConfigSpace:
        if self._space is None:
            t, s = as_target(self.target), self.shape
            space = ConfigSpace({}, self.target)
            space.define_knob("vectors", [2, 3])
            space.define_knob("mr", list(range(2, register_rows(t, 2) + 1)))
            blocks = sorted({c for c in (16, 32, 64, 128, 256, 512) if c < s.C and s.C % c == 0}
                            | {s.C})
            space.define_knob("kc", blocks)
            space.define_knob("blocks_outer", [False, True])
            space.define_knob("pixels_outer", [True, False])
            space.define_knob("vector", ["filters", "pixels"] if s.is_gemm else ["filters"])
            space.define_knob("pack_input", [False, True] if s.is_gemm else [False])
            space.define_knob("pack_in_nest", [False, True])
            space.define_knob("weights_in_place",
                              [False, True] if s.layout == "NHWC" else [False])
            self._space = space
        return self._space

    def tiling(self, config: Config) -> ConvTiling:
        lanes = as_target(self.target).lanes(np.dtype(self.dtype).name)
        v = config.values
        return ConvTiling(mr=v["mr"], nr=v["vectors"] * lanes, vector=v["vector"], kc=v["kc"],
                          blocks_outer=v["blocks_outer"], pixels_outer=v["pixels_outer"],
                          pack_input=v["pack_input"], pack_in_nest=v["pack_in_nest"],
                          weights_in_place=v["weights_in_place"])

    def initial_points(self) -> list[dict]:
        """The target heuristic's tiling (``ConvTiling.default``), where its
        channel block is one of the space's."""
        t = ConvTiling.default(self.shape, self.dtype, self.threads, self.target)
        lanes = as_target(self.target).lanes(np.dtype(self.dtype).name)
        kc = t.kc if self.shape.C % t.kc == 0 else self.shape.C  # a block not dividing C: all
        return [{"vectors": t.nr // lanes, "mr": t.mr, "kc": kc,
                 "blocks_outer": t.blocks_outer, "pixels_outer": t.pixels_outer,
                 "vector": t.vector, "pack_input": t.pack_input,
                 "pack_in_nest": t.pack_in_nest, "weights_in_place": t.weights_in_place}]

    def check(self, config: Config) -> list:
        t = self.tiling(config)
        try:  # the operator's own check, before anything is built
            check_tiling(self.shape, t)
        except ValueError as exc:
            raise TuneError(str(exc)) from None
        return [f"polyop.ops.conv2d({self.shape!r}, {self.dtype!r}, threads={self.threads}, "
                f"tiling={t!r})"]

    def build(self, config: Config):
        s = self.shape
        return conv2d(s.C, s.H, s.W, s.F, s.R, s.S, stride=s.stride, pad=s.pad,
                      layout=s.layout, dtype=self.dtype, threads=self.threads,
                      tiling=self.tiling(config), target=self.target)

    def schedule(self, config: Config):
        return self.build(config).schedule

    def inputs(self) -> list:
        rng = np.random.default_rng(0)
        dims = self.shape.arrays()
        return [aligned(x) for x in (rng.random(dims["x"]).astype(self.dtype) - 0.5,
                                     rng.random(dims["w"]).astype(self.dtype) - 0.5,
                                     np.zeros(dims["out"], self.dtype))]

    def outputs(self, args: list) -> list[np.ndarray]:
        return [args[2]]

    def reference(self) -> list[np.ndarray]:
        x, w, _ = self.inputs()
        return [conv_reference(self.shape, x, w)]


def conv_reference(shape: ConvShape, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The convolution by numpy, in float64, in the shape's layout.

    Example::

        >>> s = ConvShape(1, 3, 3, 1, layout="NCHW")
        >>> conv_reference(s, np.ones((1, 3, 3)), np.ones((1, 1, 3, 3)))[0].tolist()
        [[4.0, 6.0, 4.0], [6.0, 9.0, 6.0], [4.0, 6.0, 4.0]]
    """
    s = shape
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    if s.layout == "NHWC":  # to NCHW and back
        x, w = x.transpose(2, 0, 1), w.transpose(3, 2, 0, 1)
    xp = np.pad(x, ((0, 0), (s.pad, s.pad), (s.pad, s.pad)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (s.R, s.S), axis=(1, 2))
    win = win[:, ::s.stride, ::s.stride][:, :s.Ho, :s.Wo]
    out = np.einsum("chwrs,fcrs->fhw", win, w)
    return out.transpose(1, 2, 0) if s.layout == "NHWC" else out


def conv2d_task(shape: ConvShape, dtype: str = "float32", threads: int = 1,
                target: str = "cpu") -> Conv2dTask:
    """The tuning task of ``polyop.ops.conv2d`` at ``shape``."""
    return Conv2dTask(shape, dtype, threads, target)


def tune_ops(tasks: list[Task], trials: int = 64, strategy: str = "model", seed: int = 0,
             log=None, runner=None, progress: bool = True, **options) -> dict:
    """Tune each operator task and store its best tiling in the operators'
    database; returns ``{task.key: TuneResult}``. A task whose every candidate
    failed stores nothing (its operator keeps the heuristic)."""
    from .tuner import tune

    results = {}
    for task in tasks:
        result = tune(task, trials=trials, strategy=strategy, seed=seed, log=log,
                      runner=runner, progress=progress, **options)
        best = result.best
        if best is not None:
            space = task.space()
            tiling = task.tiling(space.get(space.index_of(best.knobs)))
            store(task.target, task.key, asdict(tiling), best.seconds, gflops=result.best_gflops,
                  trials=len(result.records), worker=best.worker)
        results[task.key] = result
    return results

