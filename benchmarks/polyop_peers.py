"""polyop's entries in the peer tables of ``benchmarks/peers.py``.

``register()`` adds a ``"polyop"`` factory to each workload of
``peers.WORKLOADS``: ``polyop.ops.matmul`` (plain, and with the bias + ReLU
epilogue fused) and ``polyop.ops.conv2d`` (plain, and with batch norm + ReLU
fused), compiled for the case's constant sizes with the thread count of the
run. A factory also records the compile time of the operator (schedule,
legality checks, AST, LLVM) in ``COMPILE_SECONDS[(workload, label)]``.

Example::

    >>> import peers, polyop_peers                          # doctest: +SKIP
    >>> polyop_peers.register()                             # doctest: +SKIP
    >>> sorted(peers.WORKLOADS["matmul"].peers)             # doctest: +SKIP
    ['halide', 'numpy', 'polyop', 'torch', 'tvm']
"""

from __future__ import annotations

import time

import numpy as np

import polyop
from polyop.codegen import set_num_threads

COMPILE_SECONDS: dict[tuple[str, str], float] = {}


def _timed(case, build, threads: int):
    set_num_threads(threads)
    t0 = time.perf_counter()
    op = build()
    COMPILE_SECONDS[(case.workload, case.label)] = time.perf_counter() - t0
    return op


def polyop_matmul(case, x, threads):
    """``polyop.ops.matmul`` into a preallocated output."""
    m, n, k = (case.params[v] for v in "mnk")
    mm = _timed(case, lambda: polyop.ops.matmul(m, n, k, threads=threads), threads)
    A, B, C = x["A"], x["B"], np.empty((m, n), np.float32)

    def run():
        mm(A, B, C)
        return C
    return run


def polyop_gemm_bias_relu(case, x, threads):
    """``polyop.ops.matmul(bias=True, relu=True)``: the epilogue fused per tile."""
    m, n, k = (case.params[v] for v in "mnk")
    mm = _timed(case, lambda: polyop.ops.matmul(m, n, k, bias=True, relu=True,
                                                threads=threads), threads)
    A, B, bias, C = x["A"], x["B"], x["bias"], np.empty((m, n), np.float32)

    def run():
        mm(A, B, bias, C)
        return C
    return run


def _conv_factory(bn: bool):
    def factory(case, x, threads):
        p = case.params
        layout = p["layout"]
        inp, w = x["x"][0], x["w"]
        if layout == "NCHW":
            c, h, wd = inp.shape
            f = w.shape[0]
            out = np.empty((1, f, h, wd), np.float32)
        else:
            h, wd, c = inp.shape
            f = w.shape[3]
            out = np.empty((1, h, wd, f), np.float32)
        conv = _timed(case, lambda: polyop.ops.conv2d(
            c, h, wd, f, p["r"], pad=p["pad"], layout=layout, bn=bn, relu=bn,
            threads=threads), threads)
        extra = (x["scale"], x["shift"]) if bn else ()
        args = (inp, w, *extra, out[0])

        def run():
            conv(*args)
            return out
        return run
    factory.__doc__ = ("``polyop.ops.conv2d``" +
                       (" with batch norm and ReLU fused per tile" if bn else ""))
    return factory


def register() -> None:
    """Add polyop's factories to ``peers.WORKLOADS`` (idempotent)."""
    import peers

    peers.WORKLOADS["matmul"].peers["polyop"] = polyop_matmul
    peers.WORKLOADS["gemm_bias_relu"].peers["polyop"] = polyop_gemm_bias_relu
    peers.WORKLOADS["conv2d"].peers["polyop"] = _conv_factory(False)
    peers.WORKLOADS["conv_bn_relu"].peers["polyop"] = _conv_factory(True)
