"""polyop's entries in the peer tables of ``benchmarks/peers.py``.

``register()`` adds polyop's factories to the workloads of ``peers.WORKLOADS``:
``polyop.ops.matmul`` (plain, and with the bias + ReLU epilogue fused) and
``polyop.ops.conv2d`` (plain, and with batch norm + ReLU fused), compiled for
the case's constant sizes with the thread count of the run, as ``"polyop"``;
and with their constant operand (``B``, the weights) packed at set-up, as
``"polyop-packed"``, or for ``conv_bn_relu`` ``"polyop-folded"`` (the batch
norm's scale folded into the packed weights, its shift as the bias).
The compile time of the operator (schedule, legality checks, AST, LLVM) is
the peer's set-up time, ``setup_s`` in the JSON.

Example::

    >>> import peers, polyop_peers                          # doctest: +SKIP
    >>> polyop_peers.register()                             # doctest: +SKIP
    >>> sorted(peers.WORKLOADS["matmul"].peers)             # doctest: +SKIP
    ['halide', 'numpy', 'polyop', 'polyop-packed', 'torch', 'tvm']
"""

from __future__ import annotations

import numpy as np

import polyop
from polyop.codegen import set_num_threads


def _built(build, threads: int):
    """``build()`` with the runtime's thread count set to ``threads``."""
    set_num_threads(threads)
    return build()


def _matmul_factory(fused: bool, packed: bool = False):
    """``polyop.ops.matmul`` into a preallocated output; with ``fused`` the
    bias + ReLU epilogue runs per tile, with ``packed`` ``B`` is packed at
    set-up (``Matmul.pack_b``: constant weights)."""
    def factory(case, x, threads):
        m, n, k = (case.params[v] for v in "mnk")
        mm = _built(lambda: polyop.ops.matmul(m, n, k, bias=fused, relu=fused,
                                              packed_b=packed, threads=threads), threads)
        B = mm.pack_b(x["B"]) if packed else x["B"]
        args = (x["A"], B, *((x["bias"],) if fused else ()), np.empty((m, n), np.float32))

        def run():
            mm(*args)
            return args[-1]
        return run
    factory.__doc__ = ("``polyop.ops.matmul``" + (" + bias + ReLU fused" if fused else "") +
                       (", B packed at set-up" if packed else ""))
    return factory


def _conv_factory(bn: bool, packed: bool = False):
    """``polyop.ops.conv2d``; with ``packed`` the weights are packed at set-up
    (``Conv2d.pack_weights``), with the batch norm's scale folded into them and
    its shift as the bias when ``bn`` (as the ``torch-folded`` peer does)."""
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
        conv = _built(lambda: polyop.ops.conv2d(
            c, h, wd, f, p["r"], pad=p["pad"], layout=layout, bias=bn and packed,
            bn=bn and not packed, relu=bn, packed_weights=packed, threads=threads), threads)
        if packed:
            w = conv.pack_weights(w, x["scale"] if bn else None)
            extra = (x["shift"],) if bn else ()
        else:
            extra = (x["scale"], x["shift"]) if bn else ()
        args = (inp, w, *extra, out[0])

        def run():
            conv(*args)
            return out
        return run
    factory.__doc__ = ("``polyop.ops.conv2d``" +
                       (" with batch norm and ReLU fused per tile" if bn else "") +
                       (", weights packed at set-up" if packed else "") +
                       (" with the scale folded into them" if packed and bn else ""))
    return factory


def register() -> None:
    """Add polyop's factories to ``peers.WORKLOADS`` (idempotent)."""
    import peers

    for workload, fused in (("matmul", False), ("gemm_bias_relu", True)):
        peers.WORKLOADS[workload].peers["polyop"] = _matmul_factory(fused)
        peers.WORKLOADS[workload].peers["polyop-packed"] = _matmul_factory(fused, packed=True)
    peers.WORKLOADS["conv2d"].peers["polyop"] = _conv_factory(False)
    peers.WORKLOADS["conv_bn_relu"].peers["polyop"] = _conv_factory(True)
    peers.WORKLOADS["conv2d"].peers["polyop-packed"] = _conv_factory(False, packed=True)
    peers.WORKLOADS["conv_bn_relu"].peers["polyop-folded"] = _conv_factory(True, packed=True)
