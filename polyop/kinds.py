"""``LoopKind``: what a loop is, from the schedule to the generated code.

One enum read by every stage: the ``Schedule`` records a kind per loop
(``parallel``, ``vectorize``, ``unroll``), the AST translation
(``polyop.astgen``) copies it onto the loop IR's ``For``, the printer shows it,
and the code generators emit it. This module imports nothing of polyop, so
every stage can import it.

The members are ``str`` values (``LoopKind.VECTOR == "vector"``), so text
written by hand (``For(..., kind="parallel")``) still works: ``ir.For`` turns it
into the member. GPU bindings (``blockIdx.x``, ``threadIdx.x``, ...) are to be
added here as members too; a code generator refuses the kinds it cannot emit
(``polyop.codegen.llvm.LOOP_KINDS``).

Example::

    >>> LoopKind("vector") is LoopKind.VECTOR
    True
    >>> LoopKind.UNROLL == "unroll", str(LoopKind.PARALLEL), LoopKind.VECTOR.primitive
    (True, 'parallel', 'vectorize')
    >>> LoopKind("unrolled")          # the loop IR's former spelling
    <LoopKind.UNROLL: 'unroll'>
"""

from __future__ import annotations

from enum import Enum


class LoopKind(str, Enum):
    """The kind of a loop; ``SERIAL`` unless a schedule primitive changed it."""

    SERIAL = "serial"
    PARALLEL = "parallel"  # iterations spread over the runtime's threads
    VECTOR = "vector"  # iterations are the lanes of the target's vectors
    UNROLL = "unroll"  # copies of the body, one per iteration

    @classmethod
    def _missing_(cls, value: object) -> LoopKind | None:
        if value == "unrolled":  # the loop IR's spelling before this enum
            return cls.UNROLL
        return None

    @property
    def primitive(self) -> str:
        """The ``Schedule`` primitive that gives a loop this kind (for messages)."""
        return "vectorize" if self is LoopKind.VECTOR else self.value

    # the value, not ``LoopKind.X``, in messages and printed code (Python's
    # default for a ``str`` mix-in changed between 3.10 and 3.12)
    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)
