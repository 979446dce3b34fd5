"""Operators built from polyop schedules: ``matmul`` (GEMM, optionally with a
fused bias and ReLU) and ``conv2d`` (with fused bias, batch norm and ReLU).

Each operator is a tensor expression plus a schedule of legality-checked
primitives (``cache_read`` packing, tiling, unrolling, ``compute_at``); the
schedule is kept on the compiled operator (``.schedule``) for inspection.
Tile sizes follow the ``target`` (default the host: ``polyop.Target``), and
``threads`` defaults to the runtime's thread count.

Example::

    >>> import polyop
    >>> mm = polyop.ops.matmul(128, 128, 128)
    >>> mm.schedule.stmts
    ['acc_init', 'Bp', 'acc', 'C']
"""

from .conv2d import Conv2d, ConvShape, ConvTiling, conv2d, conv2d_compute, schedule_conv2d
from .matmul import Matmul, MatmulTiling, matmul, schedule_matmul

__all__ = ["Conv2d", "ConvShape", "ConvTiling", "Matmul", "MatmulTiling", "conv2d",
           "conv2d_compute", "matmul", "schedule_conv2d", "schedule_matmul"]
