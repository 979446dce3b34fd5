"""Barriers placed by promotion, and the pruning of those the proof does not need.

``polyop_cuda.promote`` puts a ``SharedBarrier`` after each cooperative
copy-in and before each copy-out; ``prune_barriers`` then drops, one at a
time, each one without which the kernel is still race-free
(``polyop_cuda.proof.needed_barriers``): barriers where the proof needs
them, not more. Barriers placed by extraction are kept as they are.

Example::

    >>> from polyop import ir
    >>> body = ir.Block((SharedBarrier(), Barrier()))
    >>> [type(b).__name__ for b in _barrier_list(body)]
    ['SharedBarrier', 'Barrier']
    >>> _barriers(body, [False], itertools.count())
    Block(stmts=(Barrier(),))
"""

from __future__ import annotations

import itertools
from dataclasses import replace

from polyop import ir

from .kernel_ir import Barrier, Kernel


class SharedBarrier(Barrier):
    """A barrier placed by promotion (the proof may find it useless)."""


def prune_barriers(k: Kernel) -> Kernel:
    """Drop the promotion barriers the proof does not need (one model for
    every trial: ``proof.needed_barriers``)."""
    from .proof import needed_barriers

    keep = needed_barriers(k, lambda b: isinstance(b, SharedBarrier))
    # the counter below walks promotion barriers only: pick their flags
    mine = [f for f, b in zip(keep, _barrier_list(k.body)) if isinstance(b, SharedBarrier)]
    return replace(k, body=_barriers(k.body, mine, itertools.count()))


def _barrier_list(node):
    return [n for n in _walk(node) if isinstance(n, Barrier)]


def _walk(node):
    yield node
    for c in (node.stmts if isinstance(node, ir.Block) else
              (node.body,) if isinstance(node, ir.For) else
              (node.then,) + (() if node.else_ is None else (node.else_,))
              if isinstance(node, ir.If) else ()):
        yield from _walk(c)


def _barriers(node, keep, counter):
    """``node`` with the ``k``-th promotion barrier kept iff ``keep[k]`` (as a
    plain ``Barrier``)."""
    if isinstance(node, SharedBarrier):
        return Barrier() if keep[next(counter)] else None
    if isinstance(node, ir.Block):
        parts = [_barriers(s, keep, counter) for s in node.stmts]
        return ir.Block(tuple(p for p in parts if p is not None))
    if isinstance(node, ir.For):
        return replace(node, body=_barriers(node.body, keep, counter))
    if isinstance(node, ir.If):
        return ir.If(node.cond, _barriers(node.then, keep, counter),
                     None if node.else_ is None else _barriers(node.else_, keep, counter))
    return node
