"""A schedule's trace: the primitives applied, as data that can be replayed and
written to JSON.

Each primitive a ``polyop.Schedule`` accepts is recorded as one
``Instruction``: the primitive's name, its arguments and the loop handles it
created. Loop arguments are recorded by handle id (``LoopRef("L3")``), tensors
of tensor expressions by their array (``TensorRef``), a ``cache_read`` layout
function by the index expressions it computes (``Layout``), so that the trace
holds values only and ``Schedule.replay`` can apply it to a fresh schedule of
the same kernel. Handle ids are deterministic (a fresh schedule numbers its
loops in tree order, each primitive numbers the loops it creates in order),
and replay maps each recorded output id to the handle the replayed primitive
created in its place.

``trace_to_json`` / ``trace_from_json`` write and read a trace; the round trip
is exact:

    >>> import polyop
    >>> from polyop.schedule.trace import trace_from_json, trace_to_json
    >>> @polyop.kernel
    ... def inc(n: int, A: "f64[n]"):
    ...     for i in range(n):
    ...         A[i] += 1.0
    >>> sch = polyop.Schedule(inc)
    >>> outer, inner = sch.split(sch.get_loops("S0")[0], 4)
    >>> sch.vectorize(inner)
    >>> sch.trace[0]  # doctest: +NORMALIZE_WHITESPACE
    Instruction(primitive='split', args=(LoopRef(id='L0'), 4), kwargs=(),
                outputs=('L1', 'L2'), labels=('split(i, 4)',))
    >>> text = trace_to_json(sch.trace)
    >>> trace_from_json(text) == sch.trace
    True
    >>> print(polyop.Schedule.replay(trace_from_json(text), inc))
    schedule of inc:
      split(i, 4)
      vectorize(i_inner)
"""

from __future__ import annotations

import ast
import json
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ScheduleError
from .layout import layout_text

#: the version of the JSON form written by ``trace_to_json``
TRACE_VERSION = 1

#: the primitives a trace may name (filled by ``polyop.schedule.state.primitive``)
PRIMITIVES: set[str] = set()


@dataclass(frozen=True)
class LoopRef:
    """A loop handle in a trace: its id (``L<k>``) in the recording schedule."""

    id: str


@dataclass(frozen=True)
class TensorRef:
    """A tensor of tensor expressions in a trace, by its array's name."""

    array: str

    @property
    def name(self) -> str:
        return self.array


@dataclass(frozen=True)
class Layout:
    """A ``cache_read``/``cache_write`` layout, recorded as the lambda it
    computes (``lambda i0, i1: (i1 // 4, i0, i1 % 4)``) and callable as one."""

    text: str

    def __call__(self, *index):
        fn = _parse_layout(self.text)
        return fn(*index)


@dataclass(frozen=True)
class Instruction:
    """One primitive applied to a schedule.

    ``args``/``kwargs`` hold plain values, ``LoopRef``, ``TensorRef`` and
    ``Layout`` (and, for ``tensorize``, the intrinsic itself); ``outputs`` are
    the ids of the loops the primitive created, in creation order; ``labels``
    are the lines ``print(schedule)`` shows for it.
    """

    primitive: str
    args: tuple = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    outputs: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()

    def to_json(self) -> dict:
        """This instruction as a JSON-compatible dict (``trace_to_json``)."""
        return {"primitive": self.primitive, "args": [_to_json(a) for a in self.args],
                "kwargs": {k: _to_json(v) for k, v in self.kwargs},
                "outputs": list(self.outputs), "labels": list(self.labels)}

    @classmethod
    def from_json(cls, item, intrinsics: Mapping[str, Any] | None = None,
                  where: str = "trace: instruction") -> Instruction:
        """The instruction ``to_json`` wrote (see ``trace_from_json``)."""
        try:
            name = item["primitive"]
            args, kwargs = item.get("args", []), item.get("kwargs", {})
            outputs, labels = item.get("outputs", []), item.get("labels", [])
        except (TypeError, KeyError, AttributeError):
            raise ScheduleError(f"{where}: expected an object with 'primitive'") from None
        if name not in PRIMITIVES:
            raise ScheduleError(f"{where}: unknown primitive {name!r} (known: "
                                f"{', '.join(sorted(PRIMITIVES))})")
        if not (isinstance(args, list) and isinstance(kwargs, dict)
                and isinstance(outputs, list) and all(isinstance(o, str) for o in outputs)
                and isinstance(labels, list) and all(isinstance(t, str) for t in labels)):
            raise ScheduleError(f"{where} ({name}): malformed args, kwargs, outputs or labels")
        return cls(name, tuple(_from_json(a, where, intrinsics) for a in args),
                   tuple((key, _from_json(v, where, intrinsics)) for key, v in kwargs.items()),
                   tuple(outputs), tuple(labels))


def record_value(v, te_info=None):
    """An argument as a trace records it (see the module docstring)."""
    from .handles import Loop
    from .intrinsic_contract import IntrinsicContract

    if isinstance(v, Loop):
        return LoopRef(v.id)
    if v is None or isinstance(v, (bool, str, LoopRef, TensorRef, Layout, IntrinsicContract)):
        return v
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        return float(v)
    if isinstance(v, (list, tuple)):
        return tuple(record_value(x, te_info) for x in v)
    if te_info is not None and hasattr(v, "id") and te_info.contains(v):
        return TensorRef(te_info.array(v))
    if callable(v):
        return Layout(layout_text(v))
    return v  # replayable in this process; trace_to_json refuses it by name


_BIN = {ast.Add: "__add__", ast.Sub: "__sub__", ast.Mult: "__mul__",
        ast.FloorDiv: "__floordiv__", ast.Mod: "__mod__"}


def _parse_layout(text: str) -> Callable:
    """The function of a ``Layout``'s text; only index arithmetic is accepted
    (the text may come from a file: it is interpreted, never ``eval``-ed)."""
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        node = None
    if not isinstance(node, ast.Lambda) or node.args.vararg or node.args.kwarg:
        raise ScheduleError(f"trace: layout {text!r} is not a lambda of indices")
    params = [a.arg for a in node.args.args]

    def value(e: ast.expr, env: dict):
        if isinstance(e, ast.Name) and e.id in env:
            return env[e.id]
        if isinstance(e, ast.Constant) and type(e.value) is int:
            return e.value
        if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.USub):
            return -value(e.operand, env)
        if isinstance(e, ast.BinOp) and type(e.op) in _BIN:
            a, b = value(e.left, env), value(e.right, env)
            if isinstance(a, int):  # a constant on the left: the index's reflected operator
                return getattr(b, "__r" + _BIN[type(e.op)][2:])(a)
            return getattr(a, _BIN[type(e.op)])(b)
        raise ScheduleError(f"trace: layout {text!r}: {ast.unparse(e)} is not index "
                            "arithmetic (+ - * // % of indices and integers)")

    def fn(*index):
        env = dict(zip(params, index))
        body = node.body
        if isinstance(body, ast.Tuple):
            return tuple(value(e, env) for e in body.elts)
        return value(body, env)

    return fn


# -- JSON ---------------------------------------------------------------------------------------

def trace_to_json(trace) -> str:
    """``trace`` (a list of ``Instruction``) as JSON text, with a version field.
    An intrinsic is written by name (``trace_from_json`` needs it back)."""
    return json.dumps({"version": TRACE_VERSION,
                       "instructions": [ins.to_json() for ins in trace]})


def trace_from_json(text: str, intrinsics: Mapping[str, Any] | None = None
                    ) -> list[Instruction]:
    """The trace written by ``trace_to_json``. ``intrinsics`` maps the names of
    the intrinsics ``tensorize`` instructions use to the intrinsics. Malformed
    text, another version or an unknown primitive is a ``ScheduleError``."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as e:
        raise ScheduleError(f"trace: not valid JSON ({e})") from None
    if not isinstance(data, dict) or "version" not in data:
        raise ScheduleError("trace: expected an object with 'version' and 'instructions'")
    if data["version"] != TRACE_VERSION:
        raise ScheduleError(f"trace: version {data['version']!r} is not supported "
                            f"(this polyop reads version {TRACE_VERSION})")
    items = data.get("instructions")
    if not isinstance(items, list):
        raise ScheduleError("trace: 'instructions' must be a list")
    return [Instruction.from_json(item, intrinsics, f"trace: instruction {k}")
            for k, item in enumerate(items)]


def _to_json(v):
    from .intrinsic_contract import IntrinsicContract

    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, tuple):
        return [_to_json(x) for x in v]
    if isinstance(v, LoopRef):
        return {"loop": v.id}
    if isinstance(v, TensorRef):
        return {"tensor": v.array}
    if isinstance(v, Layout):
        return {"layout": v.text}
    if isinstance(v, IntrinsicContract):
        return {"intrinsic": v.name}
    raise ScheduleError(f"trace: argument {v!r} ({type(v).__name__}) cannot be written "
                        "to JSON")


def _from_json(v, where: str, intrinsics):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, list):
        return tuple(_from_json(x, where, intrinsics) for x in v)
    if isinstance(v, dict) and len(v) == 1:
        (key, val), = v.items()
        if isinstance(val, str):
            if key == "loop":
                return LoopRef(val)
            if key == "tensor":
                return TensorRef(val)
            if key == "layout":
                _parse_layout(val)  # refused here, not when replayed
                return Layout(val)
            if key == "intrinsic":
                if intrinsics is None or val not in intrinsics:
                    raise ScheduleError(f"{where}: intrinsic {val!r} is not given "
                                        "(pass intrinsics={name: intrinsic})")
                return intrinsics[val]
    raise ScheduleError(f"{where}: cannot read argument {v!r}")
