"""Bounded isl work: no schedule and no build may hang.

Some isl computations (a subtraction of sets with many disjuncts, the AST of
a schedule with isolated full tiles) can take exponential time on
adversarial kernels. ``isl_budget`` caps the number of isl operations a block
may perform (isl's ``max_operations``); past the cap every isl call fails
with an ``isl.Error`` that ``exceeded`` recognises, and the caller falls back
to a cheaper way (or reports a clear error) instead of never returning.

Example::

    >>> import islpy as isl
    >>> try:
    ...     with isl_budget(10):
    ...         isl.Set("{ [i, j] : 0 <= i < 9 and 0 <= j < 9 and (i < 3 or j > 5) }").subtract(
    ...             isl.Set("{ [i, j] : i = j or i + j = 8 }"))
    ... except BudgetExceeded as e:
    ...     print(e)
    isl gave up after 10 operations
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import islpy as isl

from .settings import env_int

#: operations allowed to one AST generation (schedule preparation included),
#: unless ``$POLYOP_AST_OPERATIONS`` says otherwise: PolyBench and polyop.ops
#: stay under a fifth of it; the tile of a kernel with an ``or`` guard that
#: once hung isl went past it in about 2 s. Some legal schedules need more
#: (the schedule fuzzer's ``checker``, a tile loop fused with the fused tile
#: loops of a kernel with ``%`` guards: 5-10 million, 3.6 s).
AST_OPERATIONS = 5_000_000

#: operations allowed to validating one AST for all sizes (``polyop.validate``),
#: then as many again for its check at sampled sizes: PolyBench (as written and
#: auto-scheduled) and polyop.ops validate for all sizes within it; skewed tiles
#: run as wavefronts, which needed isl 35-100 s, fall back to sampled sizes
VALIDATION_OPERATIONS = 2_000_000


def ast_operations(default: int = AST_OPERATIONS) -> int:
    """The operations allowed to one AST generation: ``$POLYOP_AST_OPERATIONS``
    when set (an integer >= 1000), else ``default``."""
    return env_int("POLYOP_AST_OPERATIONS", 1000) or default


def scaled(operations: int, statements: int) -> int:
    """A budget of ``operations`` per 100 statements (at least ``operations``):
    isl's work on long straight-line code grows with its length, and a 10,000
    statement kernel is slow, not stuck."""
    return operations * max(1, statements // 100)


class BudgetExceeded(isl.Error):
    """isl stopped at the cap of ``isl_budget``."""


@contextmanager
def isl_budget(operations: int) -> Iterator[None]:
    """Cap the isl operations of the block at ``operations``; an isl call past
    the cap raises ``BudgetExceeded``.

    isl reports the cap as the failure of whichever call hit it (a parse
    error, say), so an ``isl.Error`` in the block is tested: if isl still
    refuses a trivial computation, the cap was the cause.
    """
    ctx = isl.DEFAULT_CONTEXT
    previous = ctx.get_max_operations()
    ctx.reset_operations()
    ctx.set_max_operations(operations)
    try:
        yield
    except isl.Error as e:
        if _spent():
            raise BudgetExceeded(f"isl gave up after {operations} operations") from e
        raise
    finally:
        ctx.set_max_operations(previous)
        ctx.reset_operations()


def _spent() -> bool:
    try:
        isl.Set("{ [i] : 0 <= i < 2 }").subtract(isl.Set("{ [0] }"))
    except isl.Error:
        return True
    return False
