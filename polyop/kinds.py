"""``LoopKind``: what a loop is, from the schedule to the generated code.

One enum read by every stage: the ``Schedule`` records a kind per loop
(``parallel``, ``vectorize``, ``unroll``), the AST translation
(``polyop.astgen``) copies it onto the loop IR's ``For``, the printer shows it,
and the code generators emit it. This module imports nothing of polyop, so
every stage can import it.

The members are ``str`` values (``LoopKind.VECTOR == "vector"``), so text
written by hand (``For(..., kind="parallel")``) still works: ``ir.For`` turns it
into the member. GPU bindings are members too, spelled as CUDA names them
(``LoopKind("blockIdx.x") is LoopKind.BLOCK_X``; ``Schedule.bind``): such a loop
runs as one block or thread index of a GPU kernel (``polyop_cuda``); a code
generator refuses the kinds it cannot emit (``polyop.codegen.llvm.LOOP_KINDS``).

Example::

    >>> LoopKind("vector") is LoopKind.VECTOR
    True
    >>> LoopKind.UNROLL == "unroll", str(LoopKind.PARALLEL), LoopKind.VECTOR.primitive
    (True, 'parallel', 'vectorize')
    >>> LoopKind("unrolled")          # the loop IR's former spelling
    <LoopKind.UNROLL: 'unroll'>
    >>> k = LoopKind("threadIdx.y"); k.is_gpu, k.is_thread, k.axis, k.primitive
    (True, True, 'y', 'bind')
"""

from __future__ import annotations

from enum import Enum


class LoopKind(str, Enum):
    """The kind of a loop; ``SERIAL`` unless a schedule primitive changed it."""

    SERIAL = "serial"
    PARALLEL = "parallel"  # iterations spread over the runtime's threads
    VECTOR = "vector"  # iterations are the lanes of the target's vectors
    UNROLL = "unroll"  # copies of the body, one per iteration
    # GPU bindings: the loop's iterations are the blocks of a grid, or the
    # threads of a block, along one axis (``Schedule.bind``)
    BLOCK_X = "blockIdx.x"
    BLOCK_Y = "blockIdx.y"
    BLOCK_Z = "blockIdx.z"
    THREAD_X = "threadIdx.x"
    THREAD_Y = "threadIdx.y"
    THREAD_Z = "threadIdx.z"

    @classmethod
    def _missing_(cls, value: object) -> LoopKind | None:
        if value == "unrolled":  # the loop IR's spelling before this enum
            return cls.UNROLL
        return None

    @property
    def primitive(self) -> str:
        """The ``Schedule`` primitive that gives a loop this kind (for messages)."""
        if self.is_gpu:
            return "bind"
        return "vectorize" if self is LoopKind.VECTOR else self.value

    @property
    def is_gpu(self) -> bool:
        """A block or thread binding (``blockIdx.*``, ``threadIdx.*``)."""
        return "." in self.value

    @property
    def is_thread(self) -> bool:
        """A thread binding (``threadIdx.*``)."""
        return self.value.startswith("threadIdx.")

    @property
    def axis(self) -> str:
        """``x``, ``y`` or ``z`` for a GPU binding, ``""`` otherwise."""
        return self.value.rpartition(".")[2] if self.is_gpu else ""

    # the value, not ``LoopKind.X``, in messages and printed code (Python's
    # default for a ``str`` mix-in changed between 3.10 and 3.12)
    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)
