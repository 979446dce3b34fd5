"""The GPU kernel IR: a host program of launches, each of a kernel over loop IR.

``polyop_cuda.extract`` builds it from the loop IR (``polyop.ir``) of a
schedule whose loops are bound to GPU axes (``Schedule.bind``); the printers
(``polyop_cuda.cprinter``) turn it into CUDA C or OpenCL C, and the runtimes
(``polyop_cuda.opencl``, ``polyop_cuda.cuda``) run its host side in Python.

Host side (``GpuProgram.body``), a tree of:

- ``ir.For`` (serial), ``ir.If``, ``ir.Block`` over the size parameters, the
  scalars and the host loops' iterators — the loops outside every bound loop;
- ``Launch``: one launch of a ``Kernel``; launches run in program order, each
  after the previous one has finished (a launch inside a host loop runs once
  per iteration, and the end of a launch is where the whole grid synchronises).

A ``Kernel`` (device side):

- ``params``: what it reads (``KernelParam``: sizes, scalars, arrays and the
  host iterators in scope, ``kind`` ``"index"``), in the order of the launch;
- ``body``: loop IR (``ir.Store``, ``ir.For``, ``ir.If``, ``ir.Block``) plus
  ``Barrier``. A ``For`` whose kind is a GPU binding (``LoopKind.BLOCK_X`` …
  ``THREAD_Z``) is not a loop: each block or thread runs the iteration
  ``var = start + step * idx`` (``idx`` the block/thread index along the
  axis) if ``var < stop``, so grids and blocks may be larger than a loop's
  extent for some outer iterations (partial tiles, triangular domains). Other
  ``For`` nodes are sequential loops run by each thread;
- ``loops``: one ``BoundLoop`` per bound ``For`` of the body, with its
  ``extent``: the largest number of iterations it has for any values of the
  kernel's outer loops, a host expression (over sizes and host iterators)
  computed with isl;
- ``grid`` and ``block``: per axis x, y, z, the host expression of the grid
  (blocks) and block (threads) sizes: the largest extent of the loops bound
  to that axis, ``Const(1)`` for an unused axis;
- ``temps``: local scalars and local arrays (``name``, dtype, shape: ``()``
  for a scalar), private to each thread;
- ``Barrier``: every thread of the block waits there, and global (and
  shared) memory written before it is visible to the block's threads after
  it. Extraction places one after each iteration of a sequential loop and
  between the statements of a sequence that run outside the thread loops of
  a kernel with thread loops (control flow there depends on block indices and
  host values only, so every thread of a block reaches the same barriers).
  Shared-memory promotion and its race/bounds proof refine these later.

Example::

    >>> from polyop import ir
    >>> from polyop.kinds import LoopKind
    >>> from polyop.types import f64
    >>> body = ir.For("i", ir.Const(0), ir.Var("n"), 1,
    ...               ir.Store("A", (ir.Var("i"),), ir.Const(0.0, f64)), LoopKind.THREAD_X)
    >>> k = Kernel("zero_kernel0", (KernelParam("n", "size", ir.INDEX),), body,
    ...            (BoundLoop("i", LoopKind.THREAD_X, ir.Var("n")),),
    ...            (ir.Const(1),) * 3, (ir.Var("n"), ir.Const(1), ir.Const(1)))
    >>> [type(n).__name__ for n in walk(k.body)]
    ['For', 'Const', 'Var', 'Store', 'Var', 'Const']
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

from polyop import ir
from polyop.kinds import LoopKind
from polyop.types import DType

AXES = ("x", "y", "z")


@dataclass(frozen=True)
class Barrier:
    """``__syncthreads()`` / ``barrier(...)``: see the module docstring."""


@dataclass(frozen=True)
class KernelParam:
    """A kernel parameter: ``kind`` ``size``, ``scalar``, ``array`` or
    ``index`` (a host loop's iterator); ``shape`` for arrays (host
    expressions); ``written``: the kernel stores to the array."""

    name: str
    kind: str
    dtype: DType
    shape: tuple[ir.Expr, ...] = ()
    written: bool = False


@dataclass(frozen=True)
class BoundLoop:
    """A ``For`` of a kernel bound to ``kind`` (a GPU axis) and its largest
    trip count ``extent`` (host expression, ``>= 0``); ``name`` is the
    schedule's name of the loop (for messages)."""

    var: str
    kind: LoopKind
    extent: ir.Expr
    name: str = ""


@dataclass(frozen=True)
class Kernel:
    """One GPU kernel (see the module docstring)."""

    name: str
    params: tuple[KernelParam, ...]
    body: ir.Stmt
    loops: tuple[BoundLoop, ...]
    grid: tuple[ir.Expr, ir.Expr, ir.Expr]
    block: tuple[ir.Expr, ir.Expr, ir.Expr]
    temps: tuple[tuple[str, DType, tuple[int, ...]], ...] = ()
    #: shared-memory buffers (name, dtype, shape) of a block (``polyop_cuda.promote``)
    shared: tuple[tuple[str, DType, tuple[int, ...]], ...] = ()


@dataclass(frozen=True)
class Launch:
    """Run ``kernel`` once, after every launch before it has finished."""

    kernel: Kernel


@dataclass(frozen=True)
class GpuProgram:
    """A whole lowered program: the kernel's own parameters (``ir.Param``), its
    kernels in launch order of appearance, and the host body of ``ir.For`` /
    ``ir.If`` / ``ir.Block`` / ``Launch``; ``requires``: the bounds
    preconditions on the sizes (``polyop.bounds``); ``scratch``: device
    buffers (name, dtype, shape) the runtime allocates for a call, for the
    temporaries that pass values from one kernel to another."""

    name: str
    params: tuple[ir.Param, ...]
    kernels: tuple[Kernel, ...]
    body: ir.Stmt | Launch
    requires: tuple[str, ...] = ()
    scratch: tuple[tuple[str, DType, tuple[int, ...]], ...] = ()


def walk(node) -> Iterator:
    """Yield ``node`` and every node below it, pre-order: loop IR, ``Barrier``
    and ``Launch`` alike (``ir.walk`` does not know the last two)."""
    yield node
    if isinstance(node, Launch):
        yield from walk(node.kernel.body)
        return
    for f in fields(node):
        v = getattr(node, f.name)
        for x in v if isinstance(v, tuple) else (v,):
            if isinstance(x, (*ir._NODE_TYPES, Barrier, Launch)):
                yield from walk(x)


def launches(node) -> Iterator[Launch]:
    """The launches of a host tree, in program order."""
    for n in walk(node):
        if isinstance(n, Launch):
            yield n
