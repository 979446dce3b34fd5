"""Tiny constructors for hand-built loop IR, shared by the code-generator tests."""

from __future__ import annotations

from polyop.ir import Bin, Block, Const, For, Function, Load, Param, Store, Var
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


def gemm_ikj(dt: DType = f64, name: str = "gemm", kind: str = "serial") -> Function:
    """C[i, j] += alpha * A[i, k] * B[k, j], loops i (of ``kind``), k, j."""
    M, N, K = V("M"), V("N"), V("K")
    i, j, k = V("i"), V("j"), V("k")
    body = S("C", i, j, B("add", L("C", i, j, dt=dt),
                          B("mul", B("mul", V("alpha", dt), L("A", i, k, dt=dt)),
                            L("B", k, j, dt=dt))))
    return Function(name, (size("M"), size("N"), size("K"), scalar("alpha", dt),
                           array("A", dt, "M", "K"), array("B", dt, "K", "N"),
                           array("C", dt, "M", "N")), (),
                    loop("i", C(0), M, loop("k", C(0), K, loop("j", C(0), N, body)),
                         kind=kind))
