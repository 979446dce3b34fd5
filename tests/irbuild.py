"""Tiny constructors for hand-built loop IR, shared by the code-generator tests."""

from __future__ import annotations

from polyop.ir import Bin, Block, Const, For, Load, Param, Store, Var
from polyop.types import INDEX, DType, f64, i64


def V(name: str, dt: DType = INDEX) -> Var:
    return Var(name, dt)


def C(value, dt: DType = INDEX) -> Const:
    return Const(value, dt)


def L(array: str, *index, dt: DType = f64) -> Load:
    return Load(array, tuple(index), dt)


def B(op: str, a, b, dt: DType | None = None) -> Bin:
    return Bin(op, a, b, dt if dt is not None else a.dtype)


def S(array: str, *index_and_value) -> Store:
    *index, value = index_and_value
    return Store(array, tuple(index), value)


def loop(var: str, start, stop, *body, step: int = 1, kind: str = "serial") -> For:
    return For(var, start, stop, step, body[0] if len(body) == 1 else Block(tuple(body)), kind)


def size(name: str) -> Param:
    return Param(name, "size", i64)


def scalar(name: str, dt: DType) -> Param:
    return Param(name, "scalar", dt)


def array(name: str, dt: DType, *shape) -> Param:
    def dim(s):
        return V(s) if isinstance(s, str) else C(s) if isinstance(s, int) else s

    return Param(name, "array", dt, tuple(dim(s) for s in shape))
