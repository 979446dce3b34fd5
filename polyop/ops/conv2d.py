"""``polyop.ops.conv2d``: a 2-D convolution built from a polyop schedule (no library call).

Batch 1, ``C`` input channels of ``H × W``, ``F`` filters of ``R × S``, a
``stride`` and a zero ``pad`` on every side; the output has ``F`` channels of
``Ho × Wo``, ``Ho = (H + 2·pad − R) // stride + 1`` (``Wo`` likewise). Two data
layouts, each with its usual weight layout:

========  ==============  ================  ==================
layout    input ``x``      weights ``w``      output ``out``
========  ==============  ================  ==================
NCHW      ``[C, H, W]``    ``[F, C, R, S]``   ``[F, Ho, Wo]``
NHWC      ``[H, W, C]``    ``[R, S, C, F]``   ``[Ho, Wo, F]``
========  ==============  ================  ==================

The convolution is an *implicit GEMM* (no im2col buffer): output pixels ×
filters, reduced over the window and the channels, in a register tile of
``mr`` rows whose operand is broadcast × ``nr`` columns held in vectors (the
BLIS micro-kernel, as in ``polyop.ops.matmul``). Two forms (``ConvTiling.vector``):

- **vectors along filters** (NHWC; NCHW but for the GEMM case below): ``mr`` output pixels
  × ``nr`` filters. The pixels are numbered ``p = h · Wo + w`` (a tile runs
  across rows: no short tile at the end of each row of a 7 × 7 image), so the
  reduction is stored as ``[Ho · Wo, F]``: NHWC's output itself, viewed so.
  The input is read in place, one broadcast per pixel and ``(r, s, c)``, from
  ``xp``, the zero-bordered input, channels last: NCHW's input is transposed
  into it, and NCHW's output is stored transposed by the epilogue.
- **vectors along pixels** (NCHW 1 × 1 convolutions with stride 1 and no
  padding, a GEMM ``w · x``): ``mr`` filters × ``nr`` pixels, ``x`` read as
  ``[C, H · W]`` (in place, or packed into panels of ``nr`` pixels) and
  ``out`` written as ``[F, H · W]``, no transposition.
  (For larger windows, NCHW vectors along pixels need the padded rows laid
  end to end, ``x[c, q + r · P + s]`` with the pitch ``P = W + 2·pad``,
  computing ``P − Wo`` wasted pixels per row; that measured 5–10 % slower
  than transposing, 20 % on 7 × 7 images.)

On one AVX2 core, on ResNet-50's layers, both layouts run at 0.9–1.1× the
speed of PyTorch's (oneDNN) convolution, fused epilogue or not.

The stages and the schedule (``schedule_conv2d``), every step a
legality-checked primitive:

1. ``xp``: an ``if_then_else`` on the border, computed once (O(C·H·W), never
   inside the micro-kernel); NHWC without padding reads ``x`` itself; an NCHW
   1 × 1 convolution with a stride copies only the pixels it reads. NCHW's
   input is transposed channels last and bordered in the same pass, its
   vector loop along the rows of ``x``, whose loads are masked at the border
   (``polyop.codegen.vector``). (Transposed first, then bordered, in two
   passes: 3 × 3 / 2, 128 → 128 at 56 × 56, 94 → 99 GFLOP/s on one Zen 4
   core, AVX-512.)
2. ``cache_read`` packs the weights into panels of ``nr`` filters (``mr`` for
   vectors along pixels), ``Wp[f // nr, r, s, c, f % nr]`` in NHWC, a row
   ``w[r, s, c, :]`` read whole, and ``Wp[f // nr, (c · R + r) · S + s, f %
   nr]`` in NCHW, the order of a row of ``w``, so that packing is a
   transpose of whole rows (``weight_layout``; the filters past ``F`` in the
   last panel are neither copied nor read), and, for vectors along pixels,
   by default the input into panels of ``nr`` pixels
   (``ConvTiling.default``). The copies that transpose (NCHW's input and
   weights) run in tiles of ``lanes × lanes``, vector loads along the
   source's rows, transposed in registers (``polyop.schedule.copies``). (NCHW
   weights of a larger window used to be transposed into a buffer in the
   order ``(c, r, s)`` and then packed in the reduction's order ``(r, s,
   c)``: packing them in the transpose's order, read by the reduction in its
   own at a stride of ``R · S`` rows, took 3 × 3 512 → 512 at 7 × 7 from 86
   to 92 GFLOP/s on one Zen 4 core, 155 to 162–176 on two; 256 → 256 at 14 ×
   14 on two, 195 → 208.) Left to LLVM's loop vectorizer, these copies were
   gathers and scatters on AVX-512. With
   ``packed_weights`` the operator takes ``w`` in that layout instead
   (``weight_layout``, ``Conv2d.pack_weights``): constant weights are packed
   once, at set-up, as TVM and oneDNN do for inference. On 3 × 3 512 → 512 at
   7 × 7 the copy per call was 30 % of the time (62 → 88 GFLOP/s on one core).
   Weights packed per call that outgrow L2 are packed inside the nest
   (``ConvTiling.pack_in_nest``): per panel of filters just before its tiles,
   or per block of channels when the blocks run outside the tiles, into a
   buffer local to that loop, so that the packed copy is read from L2 rather
   than written to L3 and read back from there once per pixel tile. NHWC
   weights that fit the L2 are not copied at all where a tile's vectors read
   two cache lines or more of each row ``w[r, s, c, :]``
   (``ConvTiling.weights_in_place``, the default with AVX-512's tiles): the
   copy's writes, and on several threads the half of it each core read from
   the other's cache, cost more than the panel's locality saved (2 threads
   on Zen 4: 13 of the 14 such ResNet-50 layers 2–11 % faster).
3. The reduction runs over channel blocks of ``kc``, each over the whole
   window, ``(c_outer, r, s, c_inner)``, so that a block of input stays in L1
   while the window slides over it. The output loops are split into
   ``mr × nr`` tiles; the tile loops go outside (for 1 × 1 windows, inside
   the loop over channel blocks, as a GEMM's ``k`` slices), the reduction
   loops next and the tile innermost, with constant trip counts: its vector
   dimension is vectorised (explicit vectors of the target; LLVM's loop
   vectorizer made gathers and scatters of it on AVX-512) and its rows
   unrolled (LLVM left 14 rows of a 3 × 3 window rolled, the tile in
   memory), so the ``mr · nr / lanes`` accumulators stay in registers across
   the reduction.
4. The initialisation runs per tile just ahead of the reduction; the epilogue
   (bias, batch norm in inference form ``conv · scale + shift``, ReLU; for
   NCHW with vectors along filters, the transposed store) per tile right
   after it (``reverse_compute_at``), so the fused operator makes one pass
   over the output.
5. With ``threads > 1`` the outer tile loop (and the copies) run in parallel.

``ConvShape``, ``ConvTiling`` (with its target-derived defaults) and the
packed weight layout live in ``polyop.ops.conv_tiling``.

A call checks its arrays in Python and runs the native code directly (the
sizes are compile-time constants: nothing is inferred per call).

Example::

    >>> import numpy as np, polyop
    >>> conv = polyop.ops.conv2d(3, 8, 8, 4, layout="NHWC", relu=True)
    >>> x = np.ones((8, 8, 3), np.float32); w = np.ones((3, 3, 3, 4), np.float32)
    >>> out = np.empty((8, 8, 4), np.float32)
    >>> conv(x, w, out); float(out[0, 0, 0]), float(out[4, 4, 0])
    (12.0, 27.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import te
from ..errors import ArgumentError, ScheduleError
from ..runtime import empty_aligned
from ..schedule import Loop, Schedule
from ..schedule.copies import transpose_by_blocks
from ..target import Target, as_target
from .conv_tiling import (
    ConvShape,
    ConvTiling,
    channel_block,
    check_tiling,
    flat_layout,
    panel_filters,
    weight_layout,
)
from .matmul import CompiledOperator, copy_panels_per_pass, default_threads, tuned_tiling


@dataclass(frozen=True)
class ConvStages:
    """The tensors of a convolution: the placeholders in call order (as the
    kernel sees them: ``x`` and ``out`` may be views of the caller's arrays),
    the zero-bordered input ``xp`` (or ``None``), the reduction ``conv`` and
    the output ``out`` (``conv`` itself, or the epilogue reading it); ``kc`` is
    the channel block in use (``C`` when unblocked); with ``packed_weights``,
    ``w`` is already in the layout of ``weight_layout``; ``transpose`` is
    ``xp`` when it copies NCHW's input channels last, else ``None``."""

    shape: ConvShape
    tiling: ConvTiling
    args: tuple[te.Tensor, ...]
    x: te.Tensor
    w: te.Tensor
    xp: te.Tensor | None
    conv: te.Tensor
    out: te.Tensor
    kc: int
    packed_weights: bool = False
    transpose: te.Tensor | None = None


def conv2d_compute(shape: ConvShape, dtype: str = "float32", tiling: ConvTiling | None = None,
                   *, bias: bool = False, bn: bool = False, relu: bool = False,
                   packed_weights: bool = False, threads: int = 1,
                   target: Target | str | None = None) -> ConvStages:
    """The tensor expressions of the convolution (module docstring), with the
    epilogue ``((conv + bias) · scale + shift)``, then ``max(·, 0)``, as asked.
    With ``packed_weights`` the weight placeholder ``w`` has the packed shape
    of ``weight_layout`` (the schedule then copies nothing). Without a
    ``tiling``, the one ``polyop tune ops`` stored for this shape and target
    (``polyop.tune.database``) is used, else ``ConvTiling.default`` picks one
    for ``threads`` threads on ``target``.

    Example::

        >>> st = conv2d_compute(ConvShape(3, 8, 8, 4, layout="NHWC"), relu=True)
        >>> [t.name for t in st.args], st.conv.shape
        (['x', 'w', 'out'], (64, 4))
    """
    shape.validate()
    tiling = tiling or tuned_tiling(ConvTiling, as_target(target), "conv2d", shape, dtype,
                                    threads) or ConvTiling.default(shape, dtype, threads, target,
                                                                   packed_weights)
    check_tiling(shape, tiling)
    C, H, W, F, R, S = shape.C, shape.H, shape.W, shape.F, shape.R, shape.S
    st, pad, Ho, Wo = shape.stride, shape.pad, shape.Ho, shape.Wo
    kc = channel_block(shape, tiling)
    zero = te.const(0, dtype)
    dims = shape.arrays()
    r = te.reduce_axis((0, R), name="r")
    s = te.reduce_axis((0, S), name="s")
    nchw = shape.layout == "NCHW"
    if kc == C:
        ch = te.reduce_axis((0, C), name="c")
        axes, co, ci = [r, s, ch], None, None
    else:  # channel blocks of kc, each over the window: (c_outer, r, s, c_inner)
        co = te.reduce_axis((0, C // kc), name="c_outer")
        ci = te.reduce_axis((0, kc), name="c_inner")
        ch, axes = co * kc + ci, [co, r, s, ci]
    layout, packed_shape = weight_layout(shape, tiling)
    # NCHW weights viewed as [F, C · R · S]: packing transposes whole rows
    flat = nchw and not packed_weights
    w = te.placeholder(packed_shape if packed_weights else (F, C * R * S) if flat
                       else dims["w"], dtype, name="w")

    def weight(f, c, r_, s_):  # in the caller's index order of w, or packed
        at = (f, c, r_, s_) if nchw else (r_, s_, c, f)
        if packed_weights:
            return w[layout(*at) if kc == C else _packed_block(shape, layout(*at), co, ci,
                                                                r_, s_)]
        if flat:
            return w[f, (c * R + r_) * S + s_]
        return w[at]

    extra = _epilogue_params(F, dtype, bias, bn)
    fused = bias or bn or relu

    def epilogue(v, f):
        return _epilogue(v, f, extra, relu, dtype)

    xp = transpose = None
    if tiling.vector == "pixels":  # x as [C, H · W], out as [F, H · W]
        x = te.placeholder((C, H * W), dtype, name="x")
        conv = te.compute((F, H * W), lambda f, q: te.reduce_sum(
            x[ch, q] * weight(f, ch, r, s), axis=axes), name="conv" if fused else "out")
        out = conv if not fused else te.compute(
            (F, H * W), lambda f, q: epilogue(conv[f, q], f), name="out")
    else:  # pixels p = h · Wo + w broadcast from xp[h, w, c], filters in vectors
        nhwc = shape.layout == "NHWC"
        x = src = te.placeholder(dims["x"], dtype, name="x")
        step = col_step = st
        if not nhwc and R == S == 1 and pad == 0:
            # only the rows read, x[c, st·h, w], channels last: whole rows are
            # read in vectors (picking the columns too would read x[c, h, st·w]
            # one element per lane); the pixels read are xp[h, st·w, c]
            xp = src = transpose = te.compute((Ho, W, C), lambda h, w_, c_: x[c_, h * st, w_],
                                              name="xp")
            step = 1
        elif not nhwc and pad == 0:  # channels last, nothing to pad
            xp = src = transpose = te.compute((H, W, C), lambda h, w_, c_: x[c_, h, w_],
                                              name="xp")
        elif pad:
            # bordered; NCHW transposed in the same pass, its vector loop
            # along the rows of x, whose loads are masked at the border
            def padded(h, w_, c_):
                v = x[h - pad, w_ - pad, c_] if nhwc else x[c_, h - pad, w_ - pad]
                return te.if_then_else(_inside(h, w_, H, W, pad), v, zero)

            xp = src = te.compute((H + 2 * pad, W + 2 * pad, C), padded, name="xp")
            transpose = None if nhwc else xp

        def tap(p, f):
            h, w_ = p // Wo * step + r, p % Wo * col_step + s
            return src[h, w_, ch] * weight(f, ch, r, s)

        conv = te.compute((Ho * Wo, F), lambda p, f: te.reduce_sum(tap(p, f), axis=axes),
                          name="out" if nhwc and not fused else "conv")
        if not nhwc:  # stored transposed, out[f, h, w]
            out = te.compute((F, Ho, Wo), lambda f, h, w_: epilogue(conv[h * Wo + w_, f], f),
                             name="out")
        elif fused:  # out as [Ho · Wo, F]
            out = te.compute((Ho * Wo, F), lambda p, f: epilogue(conv[p, f], f), name="out")
        else:
            out = conv
    return ConvStages(shape, tiling, (x, w, *extra, out), x, w, xp, conv, out, kc,
                      packed_weights, transpose)


def _packed_block(shape: ConvShape, index: tuple, co, ci, r, s) -> tuple:
    """A packed index with the channel block and offset given by the reduction
    axes themselves (``c = co · kc + ci``): subscripts without ``//``/``%``."""
    if shape.layout == "NCHW":
        return (index[0], co, (ci * shape.R + r) * shape.S + s, index[-1])
    return (index[0], co, r, s, ci, index[-1])


def _inside(h, w, H: int, W: int, pad: int):
    """``(h, w)`` of the padded input lies in the image."""
    return te.logical_and(h >= pad, h < H + pad, w >= pad, w < W + pad)


def _epilogue_params(F: int, dtype: str, bias: bool, bn: bool) -> tuple[te.Tensor, ...]:
    names = (["bias"] if bias else []) + (["scale", "shift"] if bn else [])
    return tuple(te.placeholder((F,), dtype, name=n) for n in names)


def _epilogue(v, f, extra: tuple[te.Tensor, ...], relu: bool, dtype: str):
    params = {t.name: t for t in extra}
    if "bias" in params:
        v = v + params["bias"][f]
    if "scale" in params:
        v = v * params["scale"][f] + params["shift"][f]
    return te.maximum(v, te.const(0, dtype)) if relu else v


def schedule_conv2d(sch: Schedule, stages: ConvStages, parallel: bool = False,
                    target: Target | str | None = None) -> dict[str, Loop]:
    """Apply the packed, register-blocked implicit-GEMM schedule (module
    docstring) with ``stages.tiling`` to the stages of ``conv2d_compute`` in
    ``sch``; ``target`` (default the host) sets the vectors of the copies.
    Returns the convolution's loops by name: ``pixel_outer``,
    ``filter_outer``, the reduction loops, ``pixel_inner``, ``filter_inner``.

    Example::

        >>> import polyop
        >>> st = conv2d_compute(ConvShape(8, 6, 6, 16, layout="NHWC"),
        ...                     tiling=ConvTiling(mr=4, nr=8, kc=8))
        >>> sch = polyop.create_schedule(st.out)
        >>> loops = schedule_conv2d(sch, st)
        >>> list(loops)
        ['pixel_outer', 'filter_outer', 'r', 's', 'c', 'pixel_inner', 'filter_inner']
    """
    t, shape, conv, kc = stages.tiling, stages.shape, stages.conv, stages.kc
    pixels = t.vector == "pixels"
    lanes = as_target(target).lanes(conv.dtype.numpy.name)
    copies: list = [stages.xp] if stages.xp is not None else []
    if stages.transpose is not None:  # x[c, h, w] -> [h, w, c], in tiles of (w, c)
        _, w_loop, c_loop = sch.get_loops(stages.transpose)
        transpose_by_blocks(sch, stages.transpose.name, w_loop.name, c_loop.name, lanes)
    in_nest = t.pack_in_nest and not stages.packed_weights
    if not (stages.packed_weights or in_nest or t.weights_in_place):
        _pack_weights(sch, stages, lanes)
        copies.append("Wp")
    per_panel = t.pack_input and t.pixels_outer
    if t.pack_input:  # x[c, q] in panels of nr pixels, Xp[q // nr, c, q % nr]
        sch.cache_read(stages.x, conv, layout=lambda c, q: (q // t.nr, c, q % t.nr),
                       pad=0.0, name="Xp")
        if not per_panel:  # packed ahead of the nest
            if shape.H * shape.W >= 8 * t.nr:  # 256 x 3136: 0.20 -> 0.17 ms
                copy_panels_per_pass(sch, "Xp")
            copies.append("Xp")
    first, *_ = sch.get_loops(conv)
    sch.fission(first)  # the init's nest apart, so that it can go inside the tile
    a, b, *red = sch.get_loops(conv)  # (broadcast, vector): (pixels, filters) or the reverse
    ao, ai = sch.split(a, t.mr)
    bo, bi = sch.split(b, t.nr)
    pixel_o, filter_o = (bo, ao) if pixels else (ao, bo)
    outer = (pixel_o, filter_o) if t.pixels_outer else (filter_o, pixel_o)
    if t.blocks_outer and kc < shape.C:  # (c_outer, tiles, r, s, c_inner, tile)
        sch.reorder(red[0], *outer, *red[1:], ai, bi)
    else:  # (tiles, [c_outer,] r, s, c[_inner], tile)
        sch.reorder(*outer, *red, ai, bi)
    # the tile in registers: vectors of the target, rows unrolled (docstring, 3.)
    sch.vectorize(bi)
    sch.unroll(ai)
    sch.compute_at(f"{conv.name}_init", outer[1])
    if per_panel:  # each pixel panel packed just before its use, by the thread using it
        sch.compute_at("Xp", pixel_o)
    if in_nest:  # per block of channels, or per panel of filters, just before its use
        at = red[0] if t.blocks_outer and kc < shape.C else filter_o
        _pack_weights(sch, stages, lanes, at=at)
        sch.set_scope("Wp", "local", at)
    if stages.out is not conv:
        sch.reverse_compute_at(stages.out, outer[1])
        # rows of the epilogue in vectors; fully unrolled, the SLP vectorizer
        # packs them across rows, by gathers (NCHW 1x1 256->64: 6% slower)
        sch.vectorize(sch.get_loops(stages.out)[-1])
        try:  # the tile of the convolution local, not in a full-size array
            sch.set_scope(conv, "local", outer[1])
        except ScheduleError:  # channel blocks outside the tiles: tiles live across them
            pass
    if parallel:
        sch.parallel(outer[0])
        for stage in copies:
            sch.parallel(sch.get_loops(stage)[0])
    pixel_i, filter_i = (bi, ai) if pixels else (ai, bi)
    loops = {"pixel_outer": pixel_o, "filter_outer": filter_o}
    loops.update({lp.name: lp for lp in red})
    loops.update({"pixel_inner": pixel_i, "filter_inner": filter_i})
    return loops


def _pack_weights(sch: Schedule, stages: ConvStages, lanes: int,
                  at: Loop | None = None) -> None:
    """``cache_read`` of the weights into ``Wp`` (``weight_layout``) and the
    loop order of the copies. NCHW (weights viewed as ``[F, C · R · S]``): a
    transpose of tiles (``transpose_by_blocks``). NHWC: vectors along the
    filters. With ``at`` (``ConvTiling.pack_in_nest``) the copy runs inside
    that loop of the nest. Copied per block of channels (``at`` the loop over
    blocks), NHWC's weights are read a whole row ``w[r, s, c, :]`` at a time,
    its panels innermost. (One panel at a time, each row is read 64 bytes at
    a time, at a stride of ``F`` floats: on Zen 3, 512 → 512 at 7 × 7, a
    third of the time went to that copy.)"""
    shape, t = stages.shape, stages.tiling
    if shape.layout == "NCHW":  # w[f, m], m = (c · R + r) · S + s
        source, rows = stages.w, flat_layout(shape, t)
    else:
        source, rows = stages.w, weight_layout(shape, t)[0]
    sch.cache_read(source, stages.conv, layout=rows, name="Wp")
    whole_rows = (at is not None and shape.layout == "NHWC" and t.blocks_outer
                  and channel_block(shape, t) < shape.C)
    if whole_rows:  # (panel, block, r, s, c, f) -> (block, c, r, s, panel, f)
        panel_l, block_l, r_l, s_l, c_l, f_l = sch.get_loops("Wp")
        sch.reorder(block_l, c_l, r_l, s_l, panel_l, f_l)
    if at is not None:
        sch.compute_at("Wp", at)
    loops = sch.get_loops("Wp")
    if at is not None:  # the copy's own loops, below the tile loop it moved into
        loops = loops[[lp.name for lp in loops].index(at.name) + 1:]
    if shape.layout == "NCHW":
        m, f = loops[-2:]
        panel = panel_filters(t)
        transpose_by_blocks(sch, "Wp", m.name, f.name, lanes, rows=0 if panel <= lanes else lanes)
    else:
        sch.vectorize(loops[-1])


class Conv2d(CompiledOperator):
    """A compiled ``polyop.ops.conv2d``: ``f(x, w, out)``, with ``bias``:
    ``f(x, w, bias, out)``, with ``bn``: ``f(x, w, scale, shift, out)`` (both:
    ``f(x, w, bias, scale, shift, out)``). ``.schedule`` is the polyop schedule
    it was built from, ``.function`` the built ``TEFunction``, ``.stages`` its
    tensors; ``.llvm_ir``, ``.asm``, ``.target`` and ``.export(path)`` are
    its code (built for another CPU, ``target=``, it cannot be called here).

    A call checks each array's type, dtype, shape and contiguity (raising
    ``ArgumentError`` naming it), then runs the native code directly: the
    shapes are compile-time constants, so nothing is inferred per call.

    Built with ``packed_weights=True``, it takes ``w`` already packed, as
    ``pack_weights`` returns it (constant weights packed once, at set-up).
    """

    def __init__(self, function, schedule: Schedule, stages: ConvStages):
        self.function, self.schedule, self.stages = function, schedule, stages
        self.tiling = stages.tiling
        self.shape = stages.shape
        dims = self.shape.arrays()
        if stages.packed_weights:
            dims.pop("w")
        self.arg_names = tuple(a.name for a in stages.args)
        self._expected = [(a.name, dims.get(a.name, tuple(int(d.value) for d in a.shape)),
                           tuple(int(d.value) for d in a.shape)) for a in stages.args]
        self.dtype = np.dtype(stages.out.dtype.numpy)
        kernel = function.kernel
        assert not kernel.program.params, "conv2d: every size is a constant"
        self._native = kernel.native
        self._order = [p.name for p in kernel.native.function.params]
        self._scratch = kernel.scratch_arrays  # every size is a constant: no sizes

    def pack_weights(self, w: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
        """``w`` (the layout's weight shape) in the packed layout this operator
        reads with ``packed_weights=True``: panels of filters, zero-padded
        (``weight_layout``). With ``scale`` (one per filter), the weights of
        filter ``f`` are multiplied by ``scale[f]``: an inference batch norm's
        scale folded into the weights, its shift then being the bias.

        Example::

            >>> import numpy as np, polyop
            >>> conv = polyop.ops.conv2d(3, 8, 8, 4, layout="NHWC", bias=True,
            ...                          packed_weights=True, tiling=ConvTiling(nr=8))
            >>> w, x = np.ones((3, 3, 3, 4), np.float32), np.ones((8, 8, 3), np.float32)
            >>> scale = np.array([1, 2, 3, 4], np.float32)
            >>> shift = np.zeros(4, np.float32)
            >>> wp = conv.pack_weights(w, scale); wp.shape
            (1, 3, 3, 3, 8)
            >>> out = np.empty((8, 8, 4), np.float32)
            >>> conv(x, wp, shift, out); out[4, 4].tolist()     # 27 · scale
            [27.0, 54.0, 81.0, 108.0]
        """
        s, shape = self.shape, self.shape.arrays()["w"]
        w = np.asarray(w)
        if w.shape != shape:
            raise ArgumentError(f"pack_weights: w has shape {w.shape}, expected {shape} "
                                f"({s.layout})", "w")
        if scale is not None:
            scale = np.asarray(scale)
            if scale.shape != (s.F,):
                raise ArgumentError(f"pack_weights: scale has shape {scale.shape}, expected "
                                    f"({s.F},)", "scale")
            w = w * scale.reshape((-1, 1, 1, 1) if s.layout == "NCHW" else (1, 1, 1, -1))
        layout, packed = weight_layout(s, self.tiling)
        wp = empty_aligned(packed, self.dtype)
        wp[...] = 0
        wp[layout(*np.indices(shape, dtype=np.intp))] = w
        return wp

    def __call__(self, *arrays: np.ndarray) -> None:
        if not self.target.is_host:
            self._native()  # raises TargetError: compiled for another machine
        if len(arrays) != len(self._expected):
            raise ArgumentError(f"{self!r} takes {len(self._expected)} arrays "
                                f"({', '.join(self.arg_names)}), got {len(arrays)}", "*")
        bound = {}
        for (name, shape, view), a in zip(self._expected, arrays):
            if not isinstance(a, np.ndarray):
                raise ArgumentError(f"argument {name}: expected a numpy array, got "
                                    f"{type(a).__name__}", name)
            if a.dtype != self.dtype:
                raise ArgumentError(f"argument {name}: dtype {a.dtype} does not match "
                                    f"{self.dtype}", name)
            if a.shape != shape:
                raise ArgumentError(f"argument {name}: shape {a.shape} does not match "
                                    f"{shape} ({self.shape.layout})", name)
            if not a.flags.c_contiguous:
                raise ArgumentError(f"argument {name}: array must be C-contiguous "
                                    "(use np.ascontiguousarray)", name)
            bound[name] = a.reshape(view)
        out = arrays[-1]
        if not out.flags.writeable:
            raise ArgumentError("argument out: the array is read-only", "out")
        for name, a in zip(self.arg_names[:-1], arrays[:-1]):
            if np.may_share_memory(a, out):
                raise ArgumentError(f"arguments {name} and out overlap in memory", "out")
        bound.update(self._scratch({}))
        self._native(*[bound[n] for n in self._order])

    def __repr__(self) -> str:
        s = self.shape
        return (f"<polyop.ops.conv2d {s.layout} {s.C}x{s.H}x{s.W} -> {s.F} {s.R}x{s.S} "
                f"stride {s.stride} pad {s.pad} {self.function.name}>")


def conv2d(C: int, H: int, W: int, F: int, R: int = 3, S: int | None = None, *,
           stride: int = 1, pad: int | None = None, layout: str = "NCHW",
           dtype: str = "float32", bias: bool = False, bn: bool = False, relu: bool = False,
           threads: int | None = None, tiling: ConvTiling | None = None,
           packed_weights: bool = False, fp_contract: bool = True,
           target: Target | str | None = None) -> Conv2d:
    """Compile a batch-1 2-D convolution of ``C`` channels of ``H × W`` with ``F``
    filters of ``R × S`` (``S`` defaults to ``R``; ``pad`` to ``R // 2``, the
    "same" padding at stride 1), in ``layout`` "NCHW" or "NHWC" (shapes in the
    module docstring). Fused after it, per output tile: ``bias`` (``+ bias[f]``),
    ``bn`` (batch norm in inference form, ``· scale[f] + shift[f]``), ``relu``.

    ``threads`` (default: the runtime's thread count, ``POLYOP_NUM_THREADS``
    or ``set_num_threads``) above 1 runs tiles in parallel, on the runtime's
    threads at call time; ``threads=1`` compiles a serial operator.
    ``target`` (default the host) picks the tiling and the machine code: for
    another CPU the operator is not callable here (``.asm``, ``.export``).
    ``fp_contract`` allows fused
    multiply-adds (results then differ from a sequential sum in the last
    bits, as any BLAS-based convolution's do). ``packed_weights`` makes ``w``
    an argument in the packed layout (``Conv2d.pack_weights``): constant
    weights are then packed once rather than on every call.

    Example::

        >>> import numpy as np, polyop
        >>> conv = polyop.ops.conv2d(4, 6, 6, 8, layout="NCHW", bn=True, relu=True)
        >>> x, w = np.ones((4, 6, 6), np.float32), np.ones((8, 4, 3, 3), np.float32)
        >>> scale, shift = np.full(8, 0.5, np.float32), np.full(8, -10.0, np.float32)
        >>> out = np.empty((8, 6, 6), np.float32)
        >>> conv(x, w, scale, shift, out); float(out[0, 0, 0]), float(out[0, 3, 3])
        (0.0, 8.0)
    """
    threads = default_threads("conv2d", threads)
    target = as_target(target)
    S = R if S is None else S
    pad = R // 2 if pad is None else pad
    shape = ConvShape(C, H, W, F, R, S, stride, pad, layout)
    if dtype not in ("float32", "float64"):
        raise ValueError(f"conv2d: dtype must be float32 or float64, got {dtype!r}")
    stages = conv2d_compute(shape, dtype, tiling, bias=bias, bn=bn, relu=relu,
                            packed_weights=packed_weights, threads=threads, target=target)
    sch = te.create_schedule(stages.out, name="conv2d")
    schedule_conv2d(sch, stages, parallel=threads > 1, target=target)
    name = f"conv2d_{layout.lower()}" + "".join(
        f"_{k}" for k, on in (("packed", packed_weights), ("bias", bias), ("bn", bn),
                              ("relu", relu)) if on)
    f = te.build(sch, list(stages.args), name=name, fp_contract=fp_contract, target=target)
    return Conv2d(f, sch, stages)
