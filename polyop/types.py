"""Element types and array annotations of the kernel language.

An argument of a ``@polyop.kernel`` function is annotated with one of:

- ``int``: a size parameter (a symbolic integer such as ``N``);
- a scalar type, ``polyop.f64`` or the string ``"f64"``;
- an array type, ``polyop.f64["N", "N"]`` or the string ``"f64[N, N]"``; each
  extent is a size-parameter name, an integer literal or an affine expression
  of the size parameters (``"N+1"``).

Example::

    >>> from polyop.types import f32, parse_annotation
    >>> f32["N", "M + 1"]
    ArrayType(dtype=f32, shape=('N', 'M + 1'))
    >>> parse_annotation("f64[N, N]")
    ArrayType(dtype=f64, shape=('N', 'N'))
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DType:
    """A scalar element type (``f32``, ``f64``, ``i32``, ``i64``)."""

    name: str

    @property
    def is_float(self) -> bool:
        return self.name[0] == "f"

    @property
    def bits(self) -> int:
        return int(self.name[1:])

    @property
    def numpy(self) -> np.dtype:
        return np.dtype({"f32": np.float32, "f64": np.float64,
                         "i32": np.int32, "i64": np.int64}[self.name])

    def __getitem__(self, shape) -> ArrayType:
        if not isinstance(shape, tuple):
            shape = (shape,)
        return ArrayType(self, tuple(str(s) for s in shape))

    def __repr__(self) -> str:
        return self.name


f32 = DType("f32")
f64 = DType("f64")
i32 = DType("i32")
i64 = DType("i64")
DTYPES = {t.name: t for t in (f32, f64, i32, i64)}
#: the type of loop iterators, size parameters and integer constants
INDEX = i64


@dataclass(frozen=True)
class ArrayType:
    """An array argument: element type and shape (extents as source strings)."""

    dtype: DType
    shape: tuple[str, ...]


@dataclass(frozen=True)
class SizeType:
    """A size parameter (annotated ``int``)."""


def promote(a: DType, b: DType) -> DType:
    """The type of a binary arithmetic result on two typed operands, as NumPy
    promotes arrays: the wider of the same kind; a float with an integer gives
    the float if it is wider than the integer, else f64 (f32 with i32 is f64).

    Example::

        >>> promote(f32, f64), promote(i32, i64), promote(f32, i32), promote(f64, i64)
        (f64, i64, f64, f64)
    """
    if a == b:
        return a
    if a.is_float != b.is_float:
        fl, it = (a, b) if a.is_float else (b, a)
        return fl if fl.bits > it.bits else f64
    return a if a.bits >= b.bits else b


_ARRAY_RE = re.compile(r"^\s*(f32|f64|i32|i64)\s*\[(.*)\]\s*$")


def parse_annotation(ann) -> DType | ArrayType | SizeType | None:
    """Interpret an argument annotation; ``None`` if it is not one of ours."""
    if ann is int or ann == "int":
        return SizeType()
    if isinstance(ann, (DType, ArrayType)):
        return ann
    if isinstance(ann, str):
        s = ann.strip()
        if s in DTYPES:
            return DTYPES[s]
        m = _ARRAY_RE.match(s)
        if m:
            dims = _split_top_level(m.group(2))
            return ArrayType(DTYPES[m.group(1)], tuple(d.strip() for d in dims))
    return None


def _split_top_level(s: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    if cur.strip():
        parts.append(cur)
    return parts
