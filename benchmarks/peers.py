"""Peer implementations (numpy, torch, TVM, Halide) of the float32 workloads of
issue 4's benchmark tables, a registry of workloads and a timing helper.

Each workload of :data:`WORKLOADS` has cases (problem sizes), an input maker, a
float64 reference and a dict ``peers`` of *factories*. A factory
``f(case, inputs, threads)`` does all set-up (compilation, layout changes of
constant weights, output allocation) and returns a zero-argument callable that
computes the result and returns it (a numpy array, or an object with
``.numpy()``); it raises :class:`PeerUnavailable` when its library is absent or
does not handle the case. Add a peer (e.g. polyop's own kernels) with
``WORKLOADS["matmul"].peers["polyop"] = factory``.

Threads: one count per process. :func:`thread_env` gives the environment
(``OPENBLAS/OMP/MKL/TVM/HL_NUM_THREADS``) to set before the libraries start
their pools (``peers_bench.py`` runs one subprocess per count);
:func:`set_threads` also sets torch and OpenBLAS (threadpoolctl if installed,
else ctypes) at run time. TVM and Halide use ``parallel`` only if ``threads > 1``.

Example::

    >>> case = WORKLOADS["matmul"].cases(quick=True)[0]
    >>> x = WORKLOADS["matmul"].inputs(case, np.random.default_rng(0))
    >>> run = WORKLOADS["matmul"].peers["numpy"](case, x, 1)
    >>> check(run(), WORKLOADS["matmul"].reference(case, x)) < RTOL
    True
"""

from __future__ import annotations

import ctypes
import importlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RTOL = 1e-3  # max |peer - ref| / max |ref| accepted by the reference check


class PeerUnavailable(Exception):
    """The peer's library is not installed, or the peer does not handle the case."""


@dataclass
class Case:
    """One problem instance: ``label`` for tables, ``params`` for factories."""
    workload: str
    label: str
    params: dict[str, Any]
    flops: float


Run = Callable[[], Any]
Factory = Callable[[Case, dict[str, np.ndarray], int], Run]


@dataclass
class Workload:
    """A benchmark workload and the registry of its peers (name -> factory)."""
    name: str
    cases: Callable[..., list[Case]]
    inputs: Callable[[Case, np.random.Generator], dict[str, np.ndarray]]
    reference: Callable[[Case, dict[str, np.ndarray]], np.ndarray]
    peers: dict[str, Factory] = field(default_factory=dict)


# ---------------------------------------------------------------- threads, timing, checks

def thread_env(threads: int) -> dict[str, str]:
    """Environment fixing every peer's thread count (set it before the imports).
    With several threads, idle OpenBLAS workers are also told to sleep after
    2**4 cycles (``OPENBLAS_THREAD_TIMEOUT=4``) instead of spinning for up to
    ~0.1 s, which otherwise steals a core from the peer timed next; TVM's
    workers spin 10**4 rounds, not 3 * 10**5 (``TVM_THREAD_POOL_SPIN_COUNT``),
    and are not pinned to cores (``TVM_BIND_THREADS=0``): pinned, they halved
    the speed of Halide's thread pool in the same process (measured).

    >>> thread_env(2)["TVM_NUM_THREADS"]
    '2'
    """
    names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
             "TVM_NUM_THREADS", "HL_NUM_THREADS")
    env = {k: str(threads) for k in names}
    if threads > 1:
        env.update(OPENBLAS_THREAD_TIMEOUT="4", TVM_BIND_THREADS="0",
                   TVM_THREAD_POOL_SPIN_COUNT="10000")
    return env


def set_threads(threads: int) -> list[str]:
    """Set torch's and OpenBLAS's thread counts now; return what was set.

    >>> "openblas" in " ".join(set_threads(1))
    True
    """
    done = []
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=threads)
        done.append(f"threadpoolctl={threads}")
    except ImportError:
        with open("/proc/self/maps") as f:
            libs = {ln.split()[-1] for ln in f if "openblas" in ln and ".so" in ln}
        for lib in libs:
            h = ctypes.CDLL(lib)
            for sym in ("openblas_set_num_threads", "scipy_openblas_set_num_threads64_",
                        "openblas_set_num_threads64_", "scipy_openblas_set_num_threads"):
                if hasattr(h, sym):
                    getattr(h, sym)(ctypes.c_int(threads))
                    done.append(f"{sym}({threads}) in {os.path.basename(lib)}")
                    break
    try:
        import torch
        torch.set_num_threads(threads)
        done.append(f"torch.set_num_threads({threads})")
    except ImportError:
        pass
    return done


def time_interleaved(runs: dict[str, Run], repeat: int, warmup: int = 1,
                     settle_s: float = 0.0) -> dict[str, list[float]]:
    """Wall-clock seconds of ``repeat`` calls of each run, interleaved: round
    ``r`` calls them in order, round ``r+1`` in reverse order. With
    ``settle_s > 0`` each timed call follows untimed calls of the same run
    lasting at least ``settle_s`` (at least one), so that another library's
    thread pool, still spinning after its last call, has gone to sleep.

    >>> t = time_interleaved({"a": lambda: None, "b": lambda: None}, repeat=3)
    >>> len(t["a"])
    3
    """
    for fn in runs.values():
        for _ in range(warmup):
            fn()
    names = list(runs)
    out: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeat):
        for name in (names if r % 2 == 0 else names[::-1]):
            fn = runs[name]
            if settle_s > 0:
                t_end = time.perf_counter() + settle_s
                fn()
                while time.perf_counter() < t_end:
                    fn()
            t0 = time.perf_counter()
            fn()
            out[name].append(time.perf_counter() - t0)
    return out


def as_numpy(x: Any) -> np.ndarray:
    """A peer's result as a numpy array (torch tensors, TVM tensors, arrays)."""
    if hasattr(x, "detach"):
        x = x.detach()
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


def check(result: Any, ref: np.ndarray) -> float:
    """Max error relative to the largest reference entry (accept if ``<= RTOL``).

    >>> check(np.ones(3, np.float32), np.ones(3))
    0.0
    """
    out = as_numpy(result)
    if out.shape != ref.shape:
        raise ValueError(f"shape {out.shape}, expected {ref.shape}")
    return float(np.abs(out.astype(np.float64) - ref).max() / max(np.abs(ref).max(), 1e-30))


def _need(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise PeerUnavailable(f"{module} is not installed ({exc})") from None


def versions() -> dict[str, str]:
    """Installed versions of numpy and the peers ("absent" when not installed).

    >>> versions()["numpy"] == np.__version__
    True
    """
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for dist in ("numpy", "torch", "apache-tvm", "halide", "numba", "threadpoolctl"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "absent"
    return out


# ---------------------------------------------------------------- matmul, gemm + bias + relu

MATMUL_SIZES = (512, 1000, 1024, 2048)


def _gemm_cases(name: str) -> Callable[..., list[Case]]:
    def cases(quick: bool = False, sizes: tuple[int, ...] | None = None) -> list[Case]:
        ns = sizes or ((512, 1024) if quick else MATMUL_SIZES)
        return [Case(name, f"n={n}", {"m": n, "n": n, "k": n}, 2.0 * n ** 3) for n in ns]
    return cases


def _gemm_inputs(case: Case, rng: np.random.Generator) -> dict[str, np.ndarray]:
    m, n, k = (case.params[x] for x in "mnk")
    f = np.float32
    return {"A": rng.uniform(-1, 1, (m, k)).astype(f), "B": rng.uniform(-1, 1, (k, n)).astype(f),
            "bias": rng.uniform(-1, 1, n).astype(f)}


def _matmul_ref(case: Case, x: dict[str, np.ndarray]) -> np.ndarray:
    return x["A"].astype(np.float64) @ x["B"].astype(np.float64)


def _gbr_ref(case: Case, x: dict[str, np.ndarray]) -> np.ndarray:
    return np.maximum(_matmul_ref(case, x) + x["bias"], 0.0)


def numpy_matmul(case: Case, x: dict[str, np.ndarray], threads: int) -> Run:
    """numpy ``A @ B`` (OpenBLAS sgemm) into a preallocated output."""
    A, B = x["A"], x["B"]
    C = np.empty((A.shape[0], B.shape[1]), np.float32)
    return lambda: np.matmul(A, B, out=C)


def numpy_gemm_bias_relu(case: Case, x: dict[str, np.ndarray], threads: int) -> Run:
    """numpy unfused: ``matmul(out=C)``, ``add(out=C)``, ``maximum(out=C)``."""
    A, B, bias = x["A"], x["B"], x["bias"]
    C = np.empty((A.shape[0], B.shape[1]), np.float32)

    def run() -> np.ndarray:
        np.matmul(A, B, out=C)
        np.add(C, bias, out=C)
        return np.maximum(C, 0.0, out=C)
    return run


def torch_matmul(case: Case, x: dict[str, np.ndarray], threads: int) -> Run:
    """``torch.mm(A, B, out=C)`` on tensors sharing numpy's memory."""
    torch = _need("torch")
    torch.set_num_threads(threads)
    A, B = torch.from_numpy(x["A"]), torch.from_numpy(x["B"])
    C = torch.empty(A.shape[0], B.shape[1])
    return lambda: torch.mm(A, B, out=C)


def torch_addmm_relu(case: Case, x: dict[str, np.ndarray], threads: int) -> Run:
    """``torch.addmm(bias, A, B, out=C)`` then ``C.relu_()``."""
    torch = _need("torch")
    torch.set_num_threads(threads)
    A, B, bias = (torch.from_numpy(x[k]) for k in ("A", "B", "bias"))
    C = torch.empty(A.shape[0], B.shape[1])
    return lambda: torch.addmm(bias, A, B, out=C).relu_()


def torch_linear_relu(case: Case, x: dict[str, np.ndarray], threads: int) -> Run:
    """``F.linear(A, W, bias).relu_()`` with ``W = B.T`` made contiguous at set-up
    (the nn.Linear weight layout)."""
    torch = _need("torch")
    torch.set_num_threads(threads)
    A, bias = torch.from_numpy(x["A"]), torch.from_numpy(x["bias"])
    W = torch.from_numpy(np.ascontiguousarray(x["B"].T))
    return lambda: torch.nn.functional.linear(A, W, bias).relu_()


def _tvm() -> tuple[Any, Any]:
    tvm = _need("tvm")
    from tvm.target import codegen
    tgt = tvm.target.Target({"kind": "llvm", "mcpu": codegen.llvm_get_system_cpu()})
    return tvm, tgt


def _tvm_args(tvm: Any, arrays: list[np.ndarray], out_shape: tuple[int, ...]) -> list[Any]:
    dev = tvm.cpu()
    return [tvm.runtime.tensor(a, dev) for a in arrays] + [
        tvm.runtime.tensor(np.zeros(out_shape, np.float32), dev)]


def tvm_gemm_factory(epilogue: bool, bn: int = 32, kf: int = 4) -> Factory:
    """TVM (TE + TensorIR schedule) GEMM in the style of TVM's "How to optimize
    GEMM on CPU" tutorial: B packed to ``[N/bn, K, bn]`` (zero-padded), ``bn x bn``
    blocks of C accumulated in a local buffer, ``k`` split by ``kf`` and
    unrolled, the ``bn`` columns vectorized, rows of blocks parallel when
    ``threads > 1``. The blocks cover N rounded up to ``bn`` (no predicate on the
    vector loop); the write-back of a block keeps the columns ``< N`` and, with
    ``epilogue``, applies ``relu(C + bias)``. Its speed depends on addresses:
    per process, about 53 or 67 GFLOP/s at n=1024 on one core (always 53 with
    ASLR off). No MetaSchedule tuning: in apache-tvm 0.27.0.post1 (tvm-ffi
    0.1.15) ``tvm.ir.save_json`` segfaults on any object, which MetaSchedule's
    tuner needs; it also wants xgboost and psutil, absent here."""
    def factory(case: Case, x: dict[str, np.ndarray], threads: int) -> Run:
        tvm, tgt = _tvm()
        from tvm import s_tir, te
        m, n, k = (case.params[v] for v in "mnk")
        A = te.placeholder((m, k), "float32", name="A")
        B = te.placeholder((k, n), "float32", name="B")
        bias = te.placeholder((n,), "float32", name="bias")
        nb = -(-n // bn)
        pB = te.compute((nb, k, bn), lambda o, y, z: te.if_then_else(
            o * bn + z < n, B[y, o * bn + z], 0.0), name="packedB")
        r = te.reduce_axis((0, k), "r")
        C = te.compute((m, nb * bn), lambda i, j: te.sum(A[i, r] * pB[j // bn, r, j % bn],
                                                         axis=r), name="C")
        if epilogue:
            out = te.compute((m, n), lambda i, j: te.max(C[i, j] + bias[j], 0.0), name="out")
        else:
            out = te.compute((m, n), lambda i, j: C[i, j], name="out")
        args = [A, B, bias] if epilogue else [A, B]
        sch = s_tir.Schedule(te.create_prim_func([*args, out]))
        cb = sch.get_sblock("C")
        i, j, kk = sch.get_loops(cb)
        io, ii = sch.split(i, [None, bn])
        jo, ji = sch.split(j, [None, bn])
        ko, ki = sch.split(kk, [None, kf])
        sch.reorder(io, jo, ko, ii, ki, ji)
        sch.compute_inline(sch.cache_write(cb, 0, "local"))  # out reads the local block
        sch.reverse_compute_at(sch.get_sblock("out"), jo)
        sch.vectorize(ji)
        sch.unroll(ki)
        po, _, pz = sch.get_loops(sch.get_sblock("packedB"))
        sch.vectorize(pz)
        if threads > 1:
            sch.parallel(io)
            sch.parallel(po)
        sch.decompose_reduction(cb, ko)
        f = tvm.compile(sch.mod, target=tgt)["main"]
        targs = _tvm_args(tvm, [x[a.name] for a in args], (m, n))
        return lambda: (f(*targs), targs[-1])[1]
    return factory


def _halide_gemm(epilogue: bool, threads: int, tx: int = 24, ty: int = 32,
                 vy: int = 4) -> tuple[Any, list[Any]]:
    hl = _need("halide")
    A = hl.ImageParam(hl.Float(32), 2, "A")  # A(k, i): Halide's first dimension is numpy's last
    B = hl.ImageParam(hl.Float(32), 2, "B")  # B(j, k)
    bias = hl.ImageParam(hl.Float(32), 1, "bias")
    x, y = hl.Var("x"), hl.Var("y")
    xi, yi, xo, yo, yii = (hl.Var(s) for s in ("xi", "yi", "xo", "yo", "yii"))
    r = hl.RDom([(0, A.dim(0).extent())], "r")
    Bp, prod, out = hl.Func("Bpanel"), hl.Func("prod"), hl.Func("out")
    Bp[x, y] = B[x, y]
    prod[x, y] = hl.f32(0)
    prod[x, y] += A[r.x, y] * Bp[x, r.x]
    out[x, y] = hl.max(prod[x, y] + bias[x], 0) if epilogue else prod[x, y]
    # tx-wide column panels of B packed once per panel; a vy x tx register tile
    out.tile(x, y, xo, yo, xi, yi, tx, ty).reorder(xi, yi, yo, xo)
    out.split(yi, yi, yii, vy).vectorize(xi, 8).unroll(xi).unroll(yii)
    if threads > 1:
        out.parallel(xo)
    prod.compute_at(out, yi).vectorize(x, 8).unroll(x).unroll(y)
    prod.update(0).reorder(x, y, r.x).vectorize(x, 8).unroll(x).unroll(y).unroll(r.x, 2)
    Bp.compute_at(out, xo).vectorize(x, 8)
    return out, [A, B, bias] if epilogue else [A, B]


def halide_gemm_factory(epilogue: bool) -> Factory:
    """Halide GEMM: 24 x 32 output tiles, a 4 x 24 register tile (3 AVX2 vectors
    per row, unrolled), the update stage vectorized and unrolled over ``k`` by 2,
    a 24-column panel of B copied contiguous per tile column, columns of tiles
    parallel when ``threads > 1``; host target (AVX2 + FMA here)."""
    def factory(case: Case, x: dict[str, np.ndarray], threads: int) -> Run:
        hl = _need("halide")
        out, params = _halide_gemm(epilogue, threads)
        fn = out.compile_to_callable(params, hl.get_host_target())
        C = np.empty((case.params["m"], case.params["n"]), np.float32)
        bufs = [hl.Buffer(x[p.name()]) for p in params] + [hl.Buffer(C)]
        return lambda: (fn(*bufs), C)[1]
    return factory


# ---------------------------------------------------------------- conv2d (+ bn + relu)

# ResNet-50 layers (batch 1): (C_in, C_out, H = W, R = S)
CONV_LAYERS = ((64, 64, 56, 3), (128, 128, 28, 3), (256, 256, 14, 3), (512, 512, 7, 3),
               (64, 256, 56, 1), (256, 64, 56, 1), (512, 128, 28, 1), (1024, 256, 14, 1))


def _conv_cases(name: str) -> Callable[..., list[Case]]:
    def cases(quick: bool = False, sizes: Any = None) -> list[Case]:
        layers = (CONV_LAYERS[1], CONV_LAYERS[6]) if quick else CONV_LAYERS
        return [Case(name, f"{r}x{r} {c}->{k} {h}x{h} {lay}",
                     {"c": c, "k": k, "h": h, "w": h, "r": r, "pad": r // 2, "layout": lay},
                     2.0 * h * h * c * k * r * r)
                for (c, k, h, r) in layers for lay in ("NCHW", "NHWC")]
    return cases


def _conv_inputs(case: Case, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """NCHW: x (1, C, H, W), w (K, C, R, S); NHWC: x (1, H, W, C), w (R, S, C, K).
    ``scale``/``shift``: inference batch-norm folded to per-channel affine."""
    c, k, h, w, r = (case.params[v] for v in "ckhwr")
    nchw = case.params["layout"] == "NCHW"
    f = np.float32
    return {"x": rng.uniform(-1, 1, (1, c, h, w) if nchw else (1, h, w, c)).astype(f),
            "w": (rng.uniform(-1, 1, (k, c, r, r) if nchw else (r, r, c, k)) / c ** .5).astype(f),
            "scale": rng.uniform(0.5, 1.5, k).astype(f), "shift": rng.uniform(-.5, .5, k).astype(f)}


def _hwc_rsck(case: Case, x: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Input as (H, W, C) and weights as (R, S, C, K), whatever the layout."""
    if case.params["layout"] == "NCHW":
        return x["x"][0].transpose(1, 2, 0), x["w"].transpose(2, 3, 1, 0)
    return x["x"][0], x["w"]


def _conv_ref(case: Case, x: dict[str, np.ndarray], bn: bool = False) -> np.ndarray:
    xi, w = _hwc_rsck(case, x)
    p, h, wd, r = case.params["pad"], case.params["h"], case.params["w"], case.params["r"]
    xp = np.pad(xi.astype(np.float64), ((p, p), (p, p), (0, 0)))
    out = sum(xp[i:i + h, j:j + wd] @ w[i, j].astype(np.float64)
              for i in range(r) for j in range(r))
    if bn:
        out = np.maximum(out * x["scale"] + x["shift"], 0.0)
    out = out[None]
    return out.transpose(0, 3, 1, 2) if case.params["layout"] == "NCHW" else out


def _torch_conv(case: Case, x: dict[str, np.ndarray], threads: int) -> tuple[Any, Any, Any]:
    """Torch input and weight (channels_last memory format for NHWC) and F.conv2d."""
    torch = _need("torch")
    torch.set_num_threads(threads)
    torch.set_grad_enabled(False)
    if case.params["layout"] == "NCHW":
        return torch.from_numpy(x["x"]), torch.from_numpy(x["w"]), torch.nn.functional.conv2d
    cl = torch.channels_last
    xt = torch.from_numpy(x["x"]).permute(0, 3, 1, 2)  # a channels_last view, no copy
    wt = torch.from_numpy(x["w"]).permute(3, 2, 0, 1).contiguous(memory_format=cl)
    return xt, wt, torch.nn.functional.conv2d


def _torch_out(case: Case, y: Any) -> Any:
    return y if case.params["layout"] == "NCHW" else y.permute(0, 2, 3, 1)


def torch_conv(case: Case, x: dict[str, np.ndarray], threads: int) -> Run:
    """``F.conv2d`` (oneDNN); NHWC runs on channels_last tensors."""
    xt, wt, conv = _torch_conv(case, x, threads)
    p = case.params["pad"]
    return lambda: _torch_out(case, conv(xt, wt, padding=p))


def torch_conv_bn_relu_unfused(case: Case, x: dict[str, np.ndarray], threads: int) -> Run:
    """``F.conv2d``, then ``y.mul_(s).add_(t).relu_()`` (per-channel, in place)."""
    xt, wt, conv = _torch_conv(case, x, threads)
    torch, p = _need("torch"), case.params["pad"]
    s, t = (torch.from_numpy(x[v]).view(1, -1, 1, 1) for v in ("scale", "shift"))
    return lambda: _torch_out(case, conv(xt, wt, padding=p).mul_(s).add_(t).relu_())


def torch_conv_bn_relu_folded(case: Case, x: dict[str, np.ndarray], threads: int) -> Run:
    """Batch-norm folded at set-up: ``F.conv2d(x, w * s, bias=t).relu_()``."""
    xt, wt, conv = _torch_conv(case, x, threads)
    torch, p = _need("torch"), case.params["pad"]
    wf = (wt * torch.from_numpy(x["scale"]).view(-1, 1, 1, 1)).contiguous(
        memory_format=torch.channels_last if case.params["layout"] == "NHWC"
        else torch.contiguous_format)
    t = torch.from_numpy(x["shift"])
    return lambda: _torch_out(case, conv(xt, wf, t, padding=p).relu_())


def numpy_conv_factory(bn: bool) -> Factory:
    """numpy: im2col (a strided view of a padded copy of the input, copied into a
    preallocated column matrix; none for 1x1) and one sgemm; NCHW computes
    ``W[K, CRS] @ cols[CRS, HW]``, NHWC ``cols[HW, RSC] @ W[RSC, K]``. With ``bn``
    the scale is folded into the weights at set-up, then ``+ shift`` and
    ``maximum(., 0)`` in place."""
    def factory(case: Case, x: dict[str, np.ndarray], threads: int) -> Run:
        c, k, h, w, r, p = (case.params[v] for v in ("c", "k", "h", "w", "r", "pad"))
        nchw = case.params["layout"] == "NCHW"
        xin, s, t = x["x"][0], x["scale"], x["shift"]
        if nchw:
            wm = x["w"].reshape(k, c * r * r) * (s[:, None] if bn else 1)
            xp = np.zeros((c, h + 2 * p, w + 2 * p), np.float32)
            out, shift = np.empty((k, h * w), np.float32), t[:, None]
            view = np.lib.stride_tricks.as_strided(
                xp, (c, r, r, h, w), xp.strides[:1] + xp.strides[1:] * 2, writeable=False)
            cols = np.empty((c, r, r, h, w), np.float32)
        else:
            wm = x["w"].reshape(r * r * c, k) * (s if bn else 1)
            xp = np.zeros((h + 2 * p, w + 2 * p, c), np.float32)
            out, shift = np.empty((h * w, k), np.float32), t
            st = xp.strides
            view = np.lib.stride_tricks.as_strided(
                xp, (h, w, r, r, c), (st[0], st[1], st[0], st[1], st[2]), writeable=False)
            cols = np.empty((h, w, r, r, c), np.float32)
        wm = wm.astype(np.float32)
        one = r == 1 and p == 0
        inner = (slice(None), slice(p, p + h), slice(p, p + w)) if nchw else (
            slice(p, p + h), slice(p, p + w), slice(None))
        shape = (1, k, h, w) if nchw else (1, h, w, k)

        def run() -> np.ndarray:
            if one:
                cm = xin.reshape(c, h * w) if nchw else xin.reshape(h * w, c)
            else:
                xp[inner] = xin
                np.copyto(cols, view)
                cm = cols.reshape(c * r * r, h * w) if nchw else cols.reshape(h * w, r * r * c)
            np.matmul(wm, cm, out=out) if nchw else np.matmul(cm, wm, out=out)
            if bn:
                np.add(out, shift, out=out)
                np.maximum(out, 0.0, out=out)
            return out.reshape(shape)
        return run
    return factory


def tvm_conv_factory(bn: bool, ki: int = 16) -> Factory:
    """TVM direct convolution as an implicit GEMM over (h, w) x k: a padded
    (H, W, C) copy of the input (also the NCHW -> HWC transpose, inside the
    timed function), weights as (R, S, C, K) (transposed at set-up for NCHW),
    a ``wi x ki`` output tile (``wi`` = 4, or 7 when 4 does not divide W;
    ``ki`` = 16 channels, two AVX2 vectors) accumulated locally over r, s, c and
    written back to NCHW or NHWC; with ``bn``: ``relu(conv(x, w * s) + t)``
    in the write-back. Rows parallel when ``threads > 1``."""
    def factory(case: Case, x: dict[str, np.ndarray], threads: int) -> Run:
        tvm, tgt = _tvm()
        from tvm import s_tir, te
        c, k, h, w, r, p = (case.params[v] for v in ("c", "k", "h", "w", "r", "pad"))
        nchw = case.params["layout"] == "NCHW"
        X = te.placeholder(x["x"].shape, "float32", name="x")
        W = te.placeholder((r, r, c, k), "float32", name="w")
        shift = te.placeholder((k,), "float32", name="shift")

        def xat(ci: Any, hi: Any, wi: Any) -> Any:
            return X[0, ci, hi, wi] if nchw else X[0, hi, wi, ci]
        pad = te.compute((h + 2 * p, w + 2 * p, c), lambda i, j, q: te.if_then_else(
            te.all(i >= p, i < h + p, j >= p, j < w + p), xat(q, i - p, j - p), 0.0), name="pad")
        rr, ss, cc = (te.reduce_axis((0, e), v) for e, v in ((r, "rr"), (r, "ss"), (c, "cc")))

        def body(i: Any, j: Any, q: Any) -> Any:
            return te.sum(pad[i + rr, j + ss, cc] * W[rr, ss, cc, q], axis=[rr, ss, cc])
        shape = (1, k, h, w) if nchw else (1, h, w, k)
        if nchw:
            conv = te.compute(shape, lambda n, q, i, j: body(i, j, q), name="conv")
        else:
            conv = te.compute(shape, lambda n, i, j, q: body(i, j, q), name="conv")
        out, args = conv, [X, W]
        if bn:
            qi = 1 if nchw else 3
            out = te.compute(shape, lambda *ix: te.max(conv[ix] + shift[ix[qi]], 0.0),
                             name="epilogue")
            args = [X, W, shift]
        sch = s_tir.Schedule(te.create_prim_func([*args, out]))
        b = sch.get_sblock("conv")
        loops = sch.get_loops(b)
        n_, q, i, j = (loops[0], *loops[1:4]) if nchw else (loops[0], loops[3], *loops[1:3])
        wi = 4 if w % 4 == 0 or w % 7 else 7
        jo, ji = sch.split(j, [None, wi])
        qo, qi_ = sch.split(q, [None, ki])
        sch.reorder(n_, i, jo, qo, *loops[4:], ji, qi_)
        sch.reverse_compute_at(sch.cache_write(b, 0, "local"), qo)  # the tile, accumulated
        if bn:  # bias + relu in the write-back
            sch.reverse_compute_inline(sch.get_sblock("epilogue"))
        sch.vectorize(qi_)
        sch.unroll(ji)
        pi, _, pq = sch.get_loops(sch.get_sblock("pad"))
        if not nchw:
            sch.vectorize(pq)
        if threads > 1:
            sch.parallel(sch.fuse(i, jo))
            sch.parallel(pi)
        sch.decompose_reduction(b, loops[4])
        f = tvm.compile(sch.mod, target=tgt)["main"]
        wk = _hwc_rsck(case, x)[1] * (x["scale"] if bn else 1)
        arrays = [x["x"], np.ascontiguousarray(wk, np.float32)] + ([x["shift"]] if bn else [])
        targs = _tvm_args(tvm, arrays, shape)
        return lambda: (f(*targs), targs[-1])[1]
    return factory


# ---------------------------------------------------------------- registry

WORKLOADS: dict[str, Workload] = {
    "matmul": Workload("matmul", _gemm_cases("matmul"), _gemm_inputs, _matmul_ref, {
        "numpy": numpy_matmul, "torch": torch_matmul,
        "tvm": tvm_gemm_factory(False), "halide": halide_gemm_factory(False)}),
    "gemm_bias_relu": Workload("gemm_bias_relu", _gemm_cases("gemm_bias_relu"), _gemm_inputs,
                               _gbr_ref, {
        "numpy": numpy_gemm_bias_relu, "torch-addmm": torch_addmm_relu,
        "torch-linear": torch_linear_relu, "tvm": tvm_gemm_factory(True),
        "halide": halide_gemm_factory(True)}),
    "conv2d": Workload("conv2d", _conv_cases("conv2d"), _conv_inputs, _conv_ref, {
        "numpy": numpy_conv_factory(False), "torch": torch_conv, "tvm": tvm_conv_factory(False)}),
    "conv_bn_relu": Workload("conv_bn_relu", _conv_cases("conv_bn_relu"), _conv_inputs,
                             lambda case, x: _conv_ref(case, x, bn=True), {
        "numpy": numpy_conv_factory(True), "torch-unfused": torch_conv_bn_relu_unfused,
        "torch-folded": torch_conv_bn_relu_folded, "tvm": tvm_conv_factory(True)}),
}
