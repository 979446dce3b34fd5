"""The shape of a ``polyop.ops.conv2d`` and what the target and the shape
decide of its schedule: ``ConvShape`` (sizes, stride, padding, layout),
``ConvTiling`` (the register tile, the channel blocks, the loop orders, the
packing; ``ConvTiling.default`` derives them from a ``polyop.Target``) and
``weight_layout``, the panels of packed weights the micro-kernel reads.
The tensor expressions and the schedule built from these choices are in
``polyop.ops.conv2d``.

Example::

    >>> s = ConvShape(64, 56, 56, 64)
    >>> s.Ho, s.flops, s.arrays()["w"]
    (56, 231211008, (64, 64, 3, 3))
    >>> t = ConvTiling.default(s, target="cpu -mtriple=x86_64-linux-gnu -mcpu=haswell")
    >>> t.mr, t.nr, t.vector
    (6, 16, 'filters')
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..target import Target, as_target
from .matmul import register_rows

LAYOUTS = ("NCHW", "NHWC")


@dataclass(frozen=True)
class ConvShape:
    """A batch-1 convolution: ``C`` channels of ``H × W`` in, ``F`` filters of
    ``R × S``, ``stride``, zero ``pad`` on each side, ``layout`` NCHW or NHWC."""

    C: int
    H: int
    W: int
    F: int
    R: int = 3
    S: int = 3
    stride: int = 1
    pad: int = 1
    layout: str = "NCHW"

    @property
    def Ho(self) -> int:
        return (self.H + 2 * self.pad - self.R) // self.stride + 1

    @property
    def Wo(self) -> int:
        return (self.W + 2 * self.pad - self.S) // self.stride + 1

    @property
    def flops(self) -> int:
        """Multiply-adds counted as two flops."""
        return 2 * self.C * self.F * self.R * self.S * self.Ho * self.Wo

    @property
    def is_gemm(self) -> bool:
        """An NCHW 1 × 1 convolution with stride 1 and no padding: ``w · x``
        on ``x`` viewed as ``[C, H · W]``."""
        return (self.layout == "NCHW" and self.R == self.S == 1 and self.stride == 1
                and self.pad == 0)

    def arrays(self) -> dict[str, tuple[int, ...]]:
        """The caller's shapes of ``x``, ``w`` and ``out``."""
        C, H, W, F, R, S, Ho, Wo = (self.C, self.H, self.W, self.F, self.R, self.S,
                                    self.Ho, self.Wo)
        if self.layout == "NCHW":
            return {"x": (C, H, W), "w": (F, C, R, S), "out": (F, Ho, Wo)}
        return {"x": (H, W, C), "w": (R, S, C, F), "out": (Ho, Wo, F)}

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad parameter."""
        for name in ("C", "H", "W", "F", "R", "S", "stride", "pad"):
            v = getattr(self, name)
            low = 0 if name == "pad" else 1
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < low:
                kind = "a non-negative" if low == 0 else "a positive"
                raise ValueError(f"conv2d: {name} must be {kind} int, got {v!r}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"conv2d: layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.Ho < 1 or self.Wo < 1:
            raise ValueError(f"conv2d: a {self.R}x{self.S} filter does not fit the "
                             f"{self.H}x{self.W} input padded by {self.pad}")


@dataclass(frozen=True)
class ConvTiling:
    """The loop structure of ``schedule_conv2d``.

    - ``mr × nr``: the register tile, ``mr`` rows whose operand is broadcast ×
      ``nr`` columns held in vectors;
    - ``vector``: what the vectors run along, ``"filters"`` or ``"pixels"``
      (only for ``ConvShape.is_gemm``);
    - ``kc``: the channels of a block of the reduction (used when it divides
      ``C``), each block running over the whole window;
    - ``blocks_outer``: the loop over channel blocks goes outside the tile
      loops, as a GEMM's ``k`` slices (a tile's accumulators are then loaded
      and stored once per block): for 1 × 1 windows, which have no window
      reuse of the input;
    - ``pixels_outer``: the loop over pixel tiles runs outside the loop over
      filter panels;
    - ``pack_input`` (vectors along pixels only): ``cache_read`` copies ``x``
      into panels of ``nr`` pixels, ``Xp[q // nr, c, q % nr]``, read
      contiguously by each filter panel;
    - ``pack_in_nest`` (vectors along filters; weights packed per call):
      the weights are packed inside the nest, into a buffer local to the
      loop that uses them, rather than all ahead of it: per block of
      channels (``blocks_outer``), all the filters, each row of the weights
      read whole; else per panel of filters (``pixels_outer`` False), just
      before its tiles, by the thread that runs them.
    - ``weights_in_place`` (NHWC, vectors along filters): no copy of the
      weights at all; the micro-kernel loads its ``nr`` filters straight from
      a row ``w[r, s, c, :]`` of the caller's array (rows ``F`` elements
      apart rather than side by side in a panel). Saves writing the packed
      copy each call and, on several threads, reading the half of it the
      other core wrote.
    """

    mr: int = 6
    nr: int = 16
    vector: str = "filters"
    kc: int = 64
    blocks_outer: bool = False
    pixels_outer: bool = True
    pack_input: bool = False
    pack_in_nest: bool = False
    weights_in_place: bool = False

    @classmethod
    def default(cls, shape: ConvShape, dtype: str = "float32", threads: int = 1,
                target: Target | str | None = None,
                packed_weights: bool = False) -> ConvTiling:
        """The tiling for ``target`` (default the host; ``ConvShape`` of one
        image, ``threads`` the number of threads running it): the loop
        structure of ``structure`` below and, for NHWC weights not packed at
        set-up, ``weights_in_place`` (no copy of the weights per call).

        NHWC weights read in place, against packed per call (ahead of the
        nest, or inside it per ``pack_in_nest``), the loop structure alike,
        on the 14 of ResNet-50's convolutions whose weights fit a 1 MiB L2
        (Zen 4, AVX-512, 7 interleaved rounds, the same results bit for bit;
        ``benchmarks/results/conv_weights_in_place_same_order_znver4.json``): 2
        threads, 13 faster, by 2–11 % (geometric mean 1.06×), 3 × 3 128 →
        128 at 28 × 28 1 % slower; 1 thread level (0.96–1.04×, mean 1.00×).
        The copy cost more than the panels' locality saved: its writes, and
        on several threads the half of the copy each core reads from the
        other's cache. Hence in place where a tile reads two cache lines or
        more of each row of weights and the weights fit the L2. With AVX2's
        tiles (16 or 24 floats, 64 or 96 bytes of a row; AVX2 code on the
        same CPU) in place lost on 15 of 18 (9 layers, 1 and 2 threads), by
        up to half. Larger weights read in place ran well when they stayed
        in cache from call to call (2 threads, 3 × 3 512 → 512 at 7 × 7, 157
        → 188 GFLOP/s) and badly when they did not: one thread, four such
        weight arrays taking turns (38 MB, more than the L3), 57–89 against
        82–89 packed. A pass over a panel reads ``nr`` of each row's ``F``
        elements, scattered over all the weights, where packing reads each
        row whole, once. On several threads the structure's rules put filter
        panels outermost so that each thread packed its own panels; with
        the weights in place pixel tiles go outermost instead, each thread
        reading only its own rows of the input (of the padded copy it wrote
        itself, for a window larger than 1 × 1) (2 threads, 9 interleaved
        rounds, GFLOP/s: 1 × 1 256 → 1024 at 14 × 14 164 → 195, 1024 → 256
        196 → 213, 1 × 1 / 2 256 → 512 at 56 × 56 202 → 218, 3 × 3 128 → 128
        at 28 × 28 184 → 203 and 220 → 223 in two runs; on one thread the
        order made no difference, 0.98–1.01×).

        >>> nhwc = ConvShape(128, 56, 56, 128, layout="NHWC")
        >>> ConvTiling.default(nhwc, target="cpu -mcpu=znver4").weights_in_place
        True
        >>> ConvTiling.default(nhwc, target="cpu -mcpu=znver4",
        ...                    packed_weights=True).weights_in_place
        False
        >>> ConvTiling.default(nhwc, target="cpu -mcpu=znver3").weights_in_place  # AVX2
        False
        """
        tiling = cls.structure(shape, dtype, threads, target, packed_weights)
        size = np.dtype(dtype).itemsize
        weights = shape.F * shape.C * shape.R * shape.S * size
        if (shape.layout == "NHWC" and tiling.vector == "filters" and not packed_weights
                and tiling.nr * size >= 128 and weights <= as_target(target).l2):
            # filter panels went outermost on several threads so that each
            # thread packed its own: with nothing to pack, pixel tiles
            return replace(tiling, weights_in_place=True, pack_in_nest=False,
                           pixels_outer=tiling.pixels_outer or threads > 1)
        return tiling

    @classmethod
    def structure(cls, shape: ConvShape, dtype: str = "float32", threads: int = 1,
                  target: Target | str | None = None,
                  packed_weights: bool = False) -> ConvTiling:
        """The register tile, channel blocks, loop orders and packing for
        ``target`` (``default``'s arguments), with every copy of the weights
        the rules below name (``default`` then drops NHWC's). Tiles are 2
        (or 3) vector registers wide, ``nr = 2 · lanes``, with the most rows
        ``mr`` the registers hold (``polyop.ops.matmul.register_rows``: 6 (4)
        on AVX2's 16 registers, 14 (9) with AVX-512's or NEON's 32); the
        channel blocks and the thresholds below are as measured on AVX2.
        Only measurement can settle — the knobs a tuner searches: the tile's
        width and rows (with 14 rows of filters, 64 filters leave a partial
        tile), the channel block ``kc``, the loop orders and packing, and
        the size thresholds, all measured on AVX2 only.

        Measured best on AVX2 over ResNet-50's layers:

        Vectors along filters: 12 accumulators of the 16 vector registers, 6
        pixels × 2 vectors of filters; blocks of 64 channels inside the tiles,
        or for 1 × 1 windows of 128 outside them. The broadcast dimension's
        tile divides the usual filter counts, so only the pixels leave a
        partial tile.

        A GEMM-shaped NCHW convolution (vectors along pixels):

        - up to 1024 pixels on AVX-512: 10 filters × 2 vectors of pixels,
          filter panels outermost, the input read in place, blocks of 128
          channels (measured in the code's comment); elsewhere
        - up to 1024 pixels (28 × 28 and smaller): 4 filters × 3 vectors of
          pixels, pixel panels outermost, each packed just before its use
          (by the thread that uses it), all channels in one block: a panel
          of input stays in L2 while the packed weights stream, and the tile
          of a fused epilogue stays in registers (1 thread, 512 → 128 at
          28 × 28, fused: 83 → 92 GFLOP/s; 1024 → 256 at 14 × 14: 88 → 89;
          2 threads, packing per panel rather than ahead: 152 → 160); tiles
          2 vectors wide (6 filters on AVX2) where the pixel panels, split
          between the threads, leave the busiest thread 5 % fewer pixels to
          compute (2 threads, 1024 → 256 at 14 × 14: 9 panels of 24 pixels,
          5 on one thread, or 13 of 16, 7 on each; 0.685 → 0.661 ms); on
          several threads with fewer than 4 pixel panels a thread (7 × 7
          images, and 14 × 14 with AVX-512's 48-pixel panels) and at least
          4 filter panels a thread, filter panels outermost, shared by the
          threads: each then streams its part of the weights rather than all
          of them (2 threads on Zen 4, AVX-512, GFLOP/s: 512 → 2048 at 7 × 7
          66 → 139, 256 → 1024 at 14 × 14 104 → 145, 1024 → 256 at 14 × 14
          157 → 173; AVX2 code on the same CPU, 7 × 7: 107 → 142, 100 → 108);
        - larger images: 6 filters × 2 vectors of pixels, blocks of 256
          channels. With 16 filter panels per thread or more, filter panels
          outermost and the input packed, each panel of weights in L1 while
          the input streams (1 thread at 56 × 56, fused: 256 → 128 84 → 86,
          64 → 256 83 → 85); with fewer, pixel panels outermost and the input
          read in place (256 → 64, fused, in the benchmark's rounds: 1 thread
          67 → 72, 2 threads 147 → 159; packing 3 MiB of input for 64
          filters cost more than it saved).

        Tiles 3 vectors wide (4 rows on AVX2) where 6 rows × 2 vectors ran at
        0.8–0.9× PyTorch, measured on one Zen 3 core (2 cores in brackets),
        GFLOP/s:

        - 1 × 1 windows with a stride (the projections of ResNet-50's
          shortcuts; the pixels of a tile are ``stride · C`` floats apart), all
          channels in one block, filter panels outermost, each packed just
          before its tiles. At stride 2, 256 → 512 at 56 × 56: NCHW 66 → 82
          (121 → 135), NHWC 87 either way; 512 → 1024 at 28 × 28: NCHW 65 →
          73 (129 → 143), NHWC 78 → 89 (145 → 170); 1024 → 2048 at 14 × 14:
          NCHW 55 → 62 (87 → 122), NHWC 51 → 69 (86 → 134). Except NCHW
          with more output pixels than filters on 16 lanes (AVX-512): 2-vector
          tiles of all channels, a filter's pixels of a tile stored 14 side by
          side rather than 9 (Zen 4, 256 → 512 at 56 × 56: 83 → 98 (145 →
          179), 1.04× PyTorch (1.00×)).
        - NCHW with fewer channels than a vector has lanes (an image's first
          layer): ResNet-50's 7 × 7 / 2 stem of 3 channels 67 → 85 (122 →
          153). NHWC keeps 6 × 2 (92 against 91).
        - a strided window onto an output whose rows are shorter than a tile
          and whose pixels are no multiple of it (7 × 7 after a 3 × 3 / 2):
          tiles of whole output rows (Zen 4, AVX-512, 512 → 512 at 14 × 14:
          NCHW 59 → 68, NHWC 71 → 85; 2 threads 129 → 154, 135 → 161).

        - NHWC 1 × 1 windows with more filters than output pixels (ResNet-50's
          14 × 14 and 7 × 7 stages: the weights outweigh the image), likewise
          one block per filter panel, panels outermost. Measured on Zen 4,
          AVX-512 (AVX2 code on the same CPU in brackets), 1 thread / 2
          threads, GFLOP/s: 1024 → 256 at 14 × 14 55 → 101 / 80 → 166 (71 →
          82 / 96 → 168); 1024 → 512 at 14 × 14 57 → 96 / 105 → 180 (86 →
          90 / 158 → 152); 2048 → 512 at 7 × 7 51 → 79 / 92 → 147 (63 → 64 /
          136 → 150); 512 → 2048 at 7 × 7 60 → 75 / 90 → 130 (59 → 78 / 50 →
          154). At 28 × 28 and larger the rules below stay ahead.

        All three only where panels of 3 vectors pad the filters by an eighth
        at most: ResNet-50's stem of 64 filters keeps 2-vector tiles on
        AVX-512 (3 × 16 lanes would compute 96).

        Why fewer rows win is not settled: the 4-row tile issues fewer
        broadcasts per multiply-add (7 loads per 12 rather than 8), but that
        alone should not cost 20 %.

        Weights packed per call (not ``packed_weights``) of a window larger
        than 1 × 1 that outgrow the L2 cache (ResNet-50's 3 × 3 layers from
        28 × 28 on: 0.6 to 9.4 MB of weights for 0.4 to 0.1 MB of input) are
        packed inside the nest (``pack_in_nest``) rather than in a pass over
        all of them ahead of it, whose packed copy goes to L3 and is read back
        from there once per pixel tile. NHWC on one thread: blocks of
        channels outside the tiles, each packed in whole rows ``w[r, s, c,
        :]`` into a buffer of at most twice the L2 (the tiles' accumulators
        are then loaded and stored once per block, and the 100–400 KB of
        output stays in L2). NCHW, whose copy transposes rows of ``F × C·R·S``
        weights read contiguously, and NHWC on several threads: filter panels
        outermost, each packed just before its tiles, into a buffer that stays
        in L2 for all the pixel tiles, when one panel fits; the threads split
        the filter panels (32 of them at 512 filters), each packing its own
        (a buffer local to the tile loops inside the parallel loop would be
        copied into each thread's private one, per block). On one Zen 3
        core, 3 × 3 512 → 512 at 7 × 7 with batch norm + ReLU: NCHW 3.7 →
        3.4 ms, NHWC 4.3 → 3.3 ms (2.96 ms with the weights packed at set-up).
        On several threads the same holds for weights of more than half the
        L2 that fit it, when the filter panels split evenly between the
        threads: packed ahead in a parallel pass, each thread reads, once per
        pixel tile, the half of the packed weights the other core wrote. On a
        2-core Zen 4 VM that copy made the speed switch between two levels,
        for seconds at a time (3 × 3 128 → 128 at 28 × 28, NCHW, 2 threads,
        0.15-s slices interleaved with PyTorch for 40 s, GFLOP/s: packed
        ahead 160 against PyTorch's 200; packed in the nest 195; packed at
        set-up 200). When it ran at its faster level: NCHW 208 → 218, NHWC
        166 → 187.
        Weights packed at set-up (``packed_weights``) of more than twice the
        L2 likewise run filter panels outermost (each panel read from memory
        once, then from L2 for all the pixel tiles), when one panel fits the
        L2: with pixel tiles outermost, all the weights were re-read from L3
        once per pixel tile (9.4 MB × 9 tiles at 512 → 512, 7 × 7), at a
        speed that depended on what the previous call left in L3 (2.7–4.2 ms
        on one Zen 3 core, 3.2–9 ms interleaved with other libraries); filter
        panels outermost, a steady 3.1 ms (256 → 256 at 14 × 14: 2.9 → 2.8
        ms, 2 threads 1.9 → 1.6; at 128 → 128, 28 × 28, 0.6 MB of weights,
        no gain).
        NHWC 1 × 1 with fewer filters than pixels on one thread likewise, by
        blocks of as many channels as fill half the L2 with weights, if that
        is 128 or more; on several threads, filter panels outermost, each
        packed by the thread that runs its tiles. (Measured on Zen 3 at 1024
        → 256, 14 × 14, before the 3-vector rule above took that layer: 1
        thread, blocks of 256, 1.38 → 1.26 ms; 2 threads 0.70 → 0.60 ms,
        against 0.65 with the weights packed at set-up and 0.87 with blocks
        of channels outside the tiles, each packed by one thread.)
        """
        t = as_target(target)
        size = np.dtype(dtype).itemsize
        lanes = t.lanes(np.dtype(dtype).name)
        mr2, mr3 = register_rows(t, 2), register_rows(t, 3)
        if shape.is_gemm:
            pixels = shape.H * shape.W
            if pixels <= 1024 and lanes >= 16:
                # AVX-512: 10 filters x 2 vectors of pixels, filter panels
                # outermost (shared by the threads), the input read in place,
                # blocks of 128 channels. Picked by tuning on 2 threads
                # (tune_bench.py --conv --conv-threads 2, 6 of 7 layers), then
                # timed against the rules below on ResNet-50's 8 such layers
                # (Zen 4, 9 interleaved rounds, GFLOP/s): ahead on all 8 on 2
                # threads (512 -> 128 at 28 x 28 133 -> 179, 512 -> 256 131 ->
                # 190, 1024 -> 256 at 14 x 14 88 -> 135, 512 -> 2048 at 7 x 7
                # 131 -> 164, the others 2-14 %), and on 7 of 8 on 1 thread
                # (1-6 %; 1024 -> 512 at 14 x 14 105 -> 104). 14 rows: as fast
                # at 28 x 28, 12 % slower at 7 x 7 (1 thread)
                return cls(mr=min(10, mr2), nr=2 * lanes, vector="pixels", kc=128,
                           pixels_outer=False)
            if pixels <= 1024:
                if (threads > 1 and -(-pixels // (3 * lanes)) < 4 * threads
                        and -(-shape.F // mr3) >= 4 * threads):
                    # too few pixel panels to share: the threads split the filter panels
                    return cls(mr=mr3, nr=3 * lanes, vector="pixels", kc=shape.C,
                               pixels_outer=False, pack_input=True)

                def busiest(nr: int) -> int:  # the pixels of the thread with the most panels
                    panels = -(-pixels // nr)
                    return -(-panels // threads) * nr

                if threads > 1 and busiest(2 * lanes) < 0.95 * busiest(3 * lanes):
                    return cls(mr=mr2, nr=2 * lanes, vector="pixels", kc=shape.C,
                               pack_input=True)
                return cls(mr=mr3, nr=3 * lanes, vector="pixels", kc=shape.C, pack_input=True)
            few = shape.F < 16 * mr2 * threads
            return cls(mr=mr2, nr=2 * lanes, vector="pixels", kc=1024 // size,
                       blocks_outer=True, pixels_outer=few, pack_input=not few)
        # 3-vector panels where they pad the filters by an eighth at most (64
        # filters: 72 on AVX2; 96 on AVX-512 would waste a third)
        three = -(-shape.F // (3 * lanes)) * 3 * lanes <= 1.125 * shape.F
        if (shape.R == shape.S == 1 and shape.stride > 1 and shape.layout == "NCHW"
                and lanes >= 16 and shape.Ho * shape.Wo >= shape.F):
            # NCHW's output is stored transposed, a filter's pixels of a tile
            # side by side: 14-pixel runs of 2-vector tiles, not 9 of 3-vector
            # ones, where the pixels outnumber the filters (Zen 4, AVX-512,
            # 256 -> 512 at 56 x 56, GFLOP/s: 1 thread 83 -> 98, 2 threads
            # 145 -> 179; at 28 x 28 and 14 x 14 the weights outweigh the image
            # and 3-vector panels stay 15-30 % ahead; AVX2's 4 x 24 stays too)
            return cls(mr=mr2, nr=2 * lanes, kc=shape.C)
        # strided 1 x 1 projections, and NHWC 1 x 1 with more filters than pixels:
        # one channel block per filter panel, panels outermost
        if three and shape.R == shape.S == 1 and (
                shape.stride > 1 or (shape.layout == "NHWC" and shape.F >= shape.Ho * shape.Wo)):
            return cls(mr=mr3, nr=3 * lanes, kc=shape.C, pixels_outer=False,
                       pack_in_nest=not packed_weights)
        if three and shape.C < lanes and shape.layout == "NCHW":  # an image's first layer
            return cls(mr=mr3, nr=3 * lanes, kc=shape.C)
        if shape.R == shape.S == 1:
            kc = 1 << (max(1, t.l2 // 2 // (shape.F * size)).bit_length() - 1)
            while kc > 128 and shape.C % kc:
                kc //= 2
            if (not packed_weights and shape.layout == "NHWC"
                    and shape.F * shape.C * size > t.l2 and 128 <= kc < shape.C):
                if threads > 1:  # each thread packs its filter panels, one at a time
                    return cls(mr=mr2, nr=2 * lanes, kc=128, pixels_outer=False,
                               pack_in_nest=True)
                return cls(mr=mr2, nr=2 * lanes, kc=kc, blocks_outer=True, pack_in_nest=True)
            return cls(mr=mr2, nr=2 * lanes, kc=128, blocks_outer=True)
        nr = 2 * lanes
        if shape.stride > 1 and shape.Wo <= mr2 and (shape.Ho * shape.Wo) % mr2:
            # a strided window onto a small output: tiles of whole output rows
            # (Zen 4, AVX-512, 3 x 3 / 2 512 -> 512 at 14 x 14, 7 x 7 pixels in
            # tiles of 7 rather than 14: GFLOP/s NCHW 59 -> 68 (2 threads 129 ->
            # 154), NHWC 71 -> 85 (135 -> 161); at stride 1, 512 at 7 x 7, no gain)
            mr2 = shape.Wo
        window = shape.R * shape.S * size  # bytes of one filter and channel
        weights = shape.F * shape.C * window
        image = shape.C * shape.H * shape.W * size
        if (not packed_weights and threads > 1 and window > size and t.l2 // 2 < weights <= t.l2
                and -(-shape.F // nr) % threads == 0 and image <= t.l2):
            # weights filling most of the L2, packed per call on several threads:
            # each thread packs and reads its own filter panels (below), and
            # reads the input once per panel: only where the input stays in L2
            # (Zen 4, 2 threads, 3 x 3 / 2 128 -> 128 at 56 x 56, 1.6 MB of
            # input, GFLOP/s: NHWC 138 -> 153, NCHW 146 -> 151 with pixel tiles
            # outermost; 3 x 3 128 -> 128 at 28 x 28 keeps filter panels, 7-15 %
            # ahead)
            return cls(mr=mr2, nr=nr, pixels_outer=False, pack_in_nest=True)
        if window == size or weights <= t.l2:
            return cls(mr=mr2, nr=nr)
        if packed_weights:  # filter panels outermost when the weights are re-read from L3
            few_reads = weights <= 2 * t.l2 or nr * shape.C * window > t.l2
            return cls(mr=mr2, nr=nr, pixels_outer=few_reads)
        if shape.layout == "NHWC" and threads == 1:  # blocks of 64 channels or fewer
            kc = 64
            while kc > 1 and (shape.C % kc or kc * shape.F * window > 2 * t.l2):
                kc //= 2
            if kc < shape.C and kc * shape.F * window <= 2 * t.l2:
                return cls(mr=mr2, nr=nr, kc=kc, blocks_outer=True, pixels_outer=False,
                           pack_in_nest=True)
        elif nr * shape.C * window <= t.l2:
            return cls(mr=mr2, nr=nr, pixels_outer=False, pack_in_nest=True)
        return cls(mr=mr2, nr=nr)


def weight_layout(shape: ConvShape, tiling: ConvTiling):
    """The packed weights: ``(layout, packed_shape)``, ``layout`` mapping an
    index of the caller's weights (``w[f, c, r, s]`` in NCHW, ``w[r, s, c, f]``
    in NHWC) to the panels of ``nr`` filters (``mr`` for vectors along
    pixels), zero-padded to whole panels (by ``Conv2d.pack_weights``; the copy
    per call leaves the padding unread), each laid out in the order the
    reduction reads it: NHWC ``Wp[f // panel, (c // kc,) r, s, c (% kc), f %
    panel]``, a row ``w[r, s, c, :]`` read whole; NCHW ``Wp[f // panel, (c //
    kc,) m, f % panel]`` with ``m = (c (% kc) · R + r) · S + s``, the order of
    a row of ``w`` (``flat_layout``), so that packing is a transpose of whole
    rows.

    Example::

        >>> layout, packed = weight_layout(ConvShape(128, 8, 8, 40), ConvTiling())
        >>> packed, layout(17, 70, 2, 1)
        ((3, 2, 576, 16), (1, 1, 61, 1))
        >>> layout, packed = weight_layout(ConvShape(128, 8, 8, 40, layout="NHWC"), ConvTiling())
        >>> packed, layout(2, 1, 70, 17)
        ((3, 2, 3, 3, 64, 16), (1, 1, 2, 1, 6, 1))
    """
    kc = channel_block(shape, tiling)
    panel = panel_filters(tiling)
    blocked = kc < shape.C
    R, S = shape.R, shape.S
    panels = -(-shape.F // panel)
    if shape.layout == "NCHW":
        flat = flat_layout(shape, tiling)

        def layout(f, c, r, s):
            return flat(f, (c * R + r) * S + s)

        blocks = (shape.C // kc, kc * R * S) if blocked else (shape.C * R * S,)
        return layout, (panels, *blocks, panel)

    def packed(r, s, c, f):
        blocks = (c // kc, r, s, c % kc) if blocked else (r, s, c)
        return (f // panel, *blocks, f % panel)

    blocks = (shape.C // kc, R, S, kc) if blocked else (R, S, shape.C)
    return packed, (panels, *blocks, panel)


def flat_layout(shape: ConvShape, tiling: ConvTiling):
    """NCHW's packed layout indexed by the weights viewed as ``[F, C · R ·
    S]``: ``(f, m) -> (f // panel, (m // (kc · R · S),) m (% kc · R · S), f %
    panel)``, an affine map with an affine inverse (``cache_read`` copies
    along it).

    >>> flat_layout(ConvShape(128, 8, 8, 40), ConvTiling())(17, 639)
    (1, 1, 63, 1)
    """
    kc = channel_block(shape, tiling)
    panel = panel_filters(tiling)
    block = kc * shape.R * shape.S

    def layout(f, m):
        rows = (m // block, m % block) if kc < shape.C else (m,)
        return (f // panel, *rows, f % panel)

    return layout


def channel_block(shape: ConvShape, tiling: ConvTiling) -> int:
    """The channels of a block of the reduction: ``tiling.kc`` where it divides
    ``C``, else ``C`` (unblocked)."""
    kc = tiling.kc
    return kc if 0 < kc < shape.C and shape.C % kc == 0 else shape.C


def check_tiling(shape: ConvShape, tiling: ConvTiling) -> None:
    """Raise ``ValueError`` when ``tiling`` cannot schedule ``shape`` (a vector
    dimension it lacks, or a copy of the weights or input with no loop to go in).

    >>> one_block = ConvTiling(kc=8, blocks_outer=True, pack_in_nest=True)
    >>> try:
    ...     check_tiling(ConvShape(8, 6, 6, 4), one_block)  # kc = C: no block to pack per
    ... except ValueError as e:
    ...     print(str(e)[:36])
    conv2d: pack_in_nest needs vector='f
    """
    if tiling.vector not in ("filters", "pixels") or (tiling.vector == "pixels"
                                                      and not shape.is_gemm):
        raise ValueError(f"conv2d: vector={tiling.vector!r}: vectors run along 'filters', or "
                         "along 'pixels' for an NCHW 1x1 convolution with stride 1, no padding")
    blocked = tiling.blocks_outer and channel_block(shape, tiling) < shape.C
    if tiling.pack_in_nest and (tiling.vector != "filters" or (
            tiling.pixels_outer and not blocked)):
        raise ValueError("conv2d: pack_in_nest needs vector='filters' and either "
                         "blocks_outer=True with kc dividing C into several blocks, or "
                         "pixels_outer=False (the weights packed per block of channels, or "
                         "per panel of filters, where the nest needs them)")
    if tiling.weights_in_place and (shape.layout != "NHWC" or tiling.vector != "filters"
                                    or tiling.pack_in_nest):
        raise ValueError("conv2d: weights_in_place needs layout='NHWC' and vector='filters' "
                         "(a vector of filters is then a piece of a row w[r, s, c, :]), "
                         "and no pack_in_nest (nothing is packed)")
    if tiling.pack_input and tiling.vector != "pixels":
        raise ValueError("conv2d: pack_input needs vector='pixels' (the input is read in "
                         "place, one broadcast per pixel, otherwise)")


def panel_filters(t: ConvTiling) -> int:
    """The filters of a panel of packed weights."""
    return t.mr if t.vector == "pixels" else t.nr
