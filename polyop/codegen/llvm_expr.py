"""Expressions of polyop's loop IR → LLVM IR instructions (llvmlite).

This module holds the expression half of the CPU code generator: type
mapping, the implicit conversions of the IR, Python-exact integer and float
arithmetic (``//`` and ``%`` floor like Python, ``min``/``max`` return the first
operand on ties), math calls, comparisons and short-circuit booleans.
``polyop.codegen.llvm`` builds functions, loops and stores on top of it.

Semantics notes (all chosen to match CPython running the same loop nest):

- no fast-math flags and no FP contraction, so ``+ - * /`` round exactly as in
  Python; a build with ``fp_contract`` (``fn.meta["fp_contract"]``) puts the
  ``contract`` flag on float ``+ - *`` and negation, which lets LLVM fuse
  ``a * b + c`` into one FMA (one rounding instead of two) and nothing else;
- a ``Select`` or the right operand of ``and``/``or`` that could trap or read
  out of bounds (a load, an integer division) is evaluated only when taken,
  with real control flow (LLVM turns it into ``select`` where that is safe);
- integer index arithmetic (loop bounds, subscripts) carries ``nsw``; integer
  arithmetic on data values wraps like numpy's fixed-width integers.

Example::

    >>> from polyop.codegen.llvm_expr import ll_type
    >>> from polyop.types import f32
    >>> str(ll_type(f32))
    'float'
"""

from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from ..ir import (
    BOOL,
    Bin,
    Call,
    Cast,
    Cmp,
    Const,
    Load,
    Logic,
    Neg,
    Not,
    Select,
    Var,
    speculatable,
)
from ..types import INDEX, DType, f64

_LL_TYPES: dict[str, ir.Type] = {
    "bool": ir.IntType(1),
    "i32": ir.IntType(32),
    "i64": ir.IntType(64),
    "f32": ir.FloatType(),
    "f64": ir.DoubleType(),
}

_ICMP = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
# Python's float comparisons: ordered, except ``!=`` which is true for NaN
_FCMP_UNORDERED = {"ne"}

_INTRINSIC_FUNCS = {"sqrt", "exp", "log", "sin", "cos"}
_LIBM_FUNCS = {"tanh"}


class CodegenError(Exception):
    """The loop IR given to the code generator is malformed (internal error)."""


def ll_type(dt: DType) -> ir.Type:
    """The LLVM type of a polyop scalar type (``bool`` is ``i1``).

    Example::

        >>> str(ll_type(DType("i64")))
        'i64'
    """
    try:
        return _LL_TYPES[dt.name]
    except KeyError:
        raise CodegenError(f"no LLVM type for dtype {dt!r}") from None


def is_bool(dt: DType) -> bool:
    """True for the IR's ``bool`` type (results of comparisons).

    Example::

        >>> is_bool(BOOL), is_bool(f64)
        (True, False)
    """
    return dt.name == "bool"


def alignment(dt: DType) -> int:
    """Alignment assumed for an element of type ``dt``: its size (numpy
    arrays are aligned to their element size), 1 for ``bool``.

    Example::

        >>> alignment(f64)
        8
    """
    return 1 if is_bool(dt) else dt.bits // 8


def promote_cmp(a: DType, b: DType) -> DType:
    """The common type two comparison operands are converted to (``bool``
    ranks below every number).

    Example::

        >>> from polyop.types import i32
        >>> promote_cmp(i32, f64), promote_cmp(BOOL, i32)
        (f64, i32)
    """
    if a == b:
        return a
    if is_bool(a):
        return b
    if is_bool(b):
        return a
    if a.is_float != b.is_float:
        return a if a.is_float else b
    return a if a.bits >= b.bits else b


@dataclass
class ArrayRef:
    """Where an array or temporary lives: base pointer, element type and the
    row-major strides (``None`` for 0-d temporaries; constants for local arrays)."""

    ptr: ir.Value
    dtype: DType
    strides: tuple[ir.Value | None, ...] | None  # None entry: stride 1


class ExprLowering:
    """Mixin that emits expressions; the function builder supplies
    ``module``, ``builder``, ``values`` (name → (value, dtype)) and
    ``arrays`` (name → ``ArrayRef``)."""

    module: ir.Module
    builder: ir.IRBuilder
    values: dict[str, tuple[ir.Value, DType]]
    arrays: dict[str, ArrayRef]
    #: fast-math flags on float ``fadd fsub fmul fneg``: ``()`` (exact, the
    #: default) or ``("contract",)`` (FMA formation allowed)
    fp_flags: tuple[str, ...] = ()

    # -- helpers ---------------------------------------------------------------

    def _fconst(self, dt: DType, v: float) -> ir.Constant:
        return ir.Constant(ll_type(dt), v)

    def _intrinsic(self, name: str, dt: DType, nargs: int = 1) -> ir.Function:
        ty = ll_type(dt)
        full = f"{name}.{ty.intrinsic_name}"
        fn = self.module.globals.get(full)
        if fn is None:
            fn = ir.Function(self.module, ir.FunctionType(ty, [ty] * nargs), full)
        return fn

    def _libm(self, name: str, dt: DType) -> ir.Function:
        full = name if dt.bits == 64 else name + "f"
        fn = self.module.globals.get(full)
        if fn is None:
            ty = ll_type(dt)
            fn = ir.Function(self.module, ir.FunctionType(ty, [ty]), full)
            fn.attributes.add("nounwind")
        return fn

    def _branchy(self, cond: ir.Value, then_fn, else_fn, ty: ir.Type) -> ir.Value:
        """``then_fn() if cond else else_fn()`` with real control flow."""
        b = self.builder
        then_bb = b.append_basic_block("sel.then")
        else_bb = b.append_basic_block("sel.else")
        merge_bb = b.append_basic_block("sel.end")
        b.cbranch(cond, then_bb, else_bb)
        b.position_at_end(then_bb)
        tv = then_fn()
        then_end = b.block
        b.branch(merge_bb)
        b.position_at_end(else_bb)
        ev = else_fn()
        else_end = b.block
        b.branch(merge_bb)
        b.position_at_end(merge_bb)
        phi = b.phi(ty)
        phi.add_incoming(tv, then_end)
        phi.add_incoming(ev, else_end)
        return phi

    # -- conversions -------------------------------------------------------------

    def convert(self, v: ir.Value, src: DType, dst: DType,
                ty: ir.Type | None = None) -> ir.Value:
        """Convert ``v`` from ``src`` to ``dst`` like Python would (``int()``
        truncates toward zero, ``bool()`` tests for non-zero). ``ty``: the LLVM
        type of the result, default ``dst``'s; a vector type (with ``v`` a
        vector) converts lane by lane."""
        if src == dst:
            return v
        b = self.builder
        ty = ty or ll_type(dst)
        if is_bool(dst):
            zero = ir.Constant(v.type, 0)
            if src.is_float:
                return b.fcmp_unordered("!=", v, zero)
            return b.icmp_signed("!=", v, zero)
        if is_bool(src):
            return b.uitofp(v, ty) if dst.is_float else b.zext(v, ty)
        if src.is_float and dst.is_float:
            return b.fpext(v, ty) if dst.bits > src.bits else b.fptrunc(v, ty)
        if dst.is_float:
            return b.sitofp(v, ty)
        if src.is_float:
            return self._float_to_int(v, src, dst)
        return b.sext(v, ty) if dst.bits > src.bits else b.trunc(v, ty)

    def _float_to_int(self, v: ir.Value, src: DType, dst: DType) -> ir.Value:
        """Truncation toward zero; NaN, infinities and values out of ``dst``'s
        range give its minimum, as NumPy's ``astype`` does on x86 (where
        CPython's ``int()`` raises). A bare ``fptosi`` would be poison there."""
        b = self.builder
        ty = ll_type(dst)
        if isinstance(v.type, ir.VectorType):  # lane by lane (polyop.codegen.vector)
            ty = ir.VectorType(ty, v.type.count)
        lo = float(-(1 << (dst.bits - 1)))
        # -2**(bits-1) is exact in every float type; the upper limit is excluded
        inside = b.and_(b.fcmp_ordered(">=", v, ir.Constant(v.type, lo)),
                        b.fcmp_ordered("<", v, ir.Constant(v.type, -lo)))
        safe = b.select(inside, v, ir.Constant(v.type, 0.0))
        return b.select(inside, b.fptosi(safe, ty), ir.Constant(ty, int(lo)))

    def emit_as(self, e, dt: DType, index: bool = False) -> ir.Value:
        """Emit ``e`` and convert the result to ``dt``."""
        return self.convert(self.emit(e, index), e.dtype, dt)

    def emit_bool(self, e) -> ir.Value:
        """Emit ``e`` as an ``i1`` truth value."""
        return self.emit_as(e, BOOL)

    # -- expressions -------------------------------------------------------------

    def emit(self, e, index: bool = False) -> ir.Value:
        """Emit expression ``e``; the value has LLVM type ``ll_type(e.dtype)``.

        ``index`` marks subscript / loop-bound context, where integer
        ``add sub mul`` get ``nsw``.
        """
        method = getattr(self, "_emit_" + type(e).__name__, None)
        if method is None:
            raise CodegenError(f"cannot emit expression {e!r}")
        return method(e, index)

    def _emit_Const(self, e: Const, index: bool) -> ir.Value:
        dt = e.dtype
        if is_bool(dt):
            return ir.Constant(ir.IntType(1), int(bool(e.value)))
        if dt.is_float:
            return ir.Constant(ll_type(dt), float(e.value))
        return ir.Constant(ll_type(dt), int(e.value))

    def _emit_Var(self, e: Var, index: bool) -> ir.Value:
        try:
            v, dt = self.values[e.name]
        except KeyError:
            raise CodegenError(f"unknown variable {e.name!r}") from None
        return self.convert(v, dt, e.dtype)

    def address(self, array: str, index: tuple, what,
                inbounds: bool = True) -> tuple[ir.Value, DType]:
        """Pointer to ``array[index]`` (row-major) and the element type;
        ``inbounds=False`` for an address that may lie outside the array (a
        masked-off lane's, never accessed)."""
        try:
            ref = self.arrays[array]
        except KeyError:
            raise CodegenError(f"unknown array {array!r} in {what!r}") from None
        if ref.strides is None or not index:
            if index:
                raise CodegenError(f"temporary {array!r} is 0-d, indexed in {what!r}")
            return ref.ptr, ref.dtype
        if len(index) != len(ref.strides):
            raise CodegenError(f"{array!r} has {len(ref.strides)} dimensions, "
                               f"indexed with {len(index)} in {what!r}")
        b = self.builder
        linear = None
        for sub, stride in zip(index, ref.strides, strict=True):
            term = self.emit_as(sub, INDEX, index=True)
            if stride is not None:
                term = b.mul(term, stride, flags=["nsw"])
            linear = term if linear is None else b.add(linear, term, flags=["nsw"])
        return b.gep(ref.ptr, [linear], inbounds=inbounds), ref.dtype

    def _emit_Load(self, e: Load, index: bool) -> ir.Value:
        ptr, dt = self.address(e.array, e.index, e)
        v = self.builder.load(ptr, align=alignment(dt))
        return self.convert(v, dt, e.dtype)

    def _emit_Neg(self, e: Neg, index: bool) -> ir.Value:
        v = self.emit_as(e.a, e.dtype, index)
        if e.dtype.is_float:
            return self.builder.fneg(v, flags=self.fp_flags)
        return self.builder.sub(ir.Constant(v.type, 0), v, flags=["nsw"] if index else ())

    def _emit_Cast(self, e: Cast, index: bool) -> ir.Value:
        return self.emit_as(e.a, e.dtype, index)

    def _emit_Not(self, e: Not, index: bool) -> ir.Value:
        return self.builder.xor(self.emit_bool(e.a), ir.Constant(ir.IntType(1), 1))

    def _emit_Cmp(self, e: Cmp, index: bool) -> ir.Value:
        ct = promote_cmp(e.a.dtype, e.b.dtype)
        if is_bool(ct) and e.op not in ("eq", "ne"):
            ct = INDEX
        a = self.emit_as(e.a, ct, index)
        b = self.emit_as(e.b, ct, index)
        op = _ICMP.get(e.op)
        if op is None:
            raise CodegenError(f"unknown comparison {e.op!r}")
        if ct.is_float and not is_bool(ct):
            if e.op in _FCMP_UNORDERED:
                return self.builder.fcmp_unordered(op, a, b)
            return self.builder.fcmp_ordered(op, a, b)
        return self.builder.icmp_signed(op, a, b)

    def _emit_Logic(self, e: Logic, index: bool) -> ir.Value:
        if e.op not in ("and", "or"):
            raise CodegenError(f"unknown boolean operator {e.op!r}")
        a = self.emit_bool(e.a)
        b = self.builder
        if speculatable(e.b):
            rhs = self.emit_bool(e.b)
            return b.and_(a, rhs) if e.op == "and" else b.or_(a, rhs)
        i1 = ir.IntType(1)
        if e.op == "and":
            return self._branchy(a, lambda: self.emit_bool(e.b), lambda: ir.Constant(i1, 0), i1)
        return self._branchy(a, lambda: ir.Constant(i1, 1), lambda: self.emit_bool(e.b), i1)

    def _emit_Select(self, e: Select, index: bool) -> ir.Value:
        c = self.emit_bool(e.cond)
        if speculatable(e.a) and speculatable(e.b):
            a = self.emit_as(e.a, e.dtype, index)
            b = self.emit_as(e.b, e.dtype, index)
            return self.builder.select(c, a, b)
        return self._branchy(c, lambda: self.emit_as(e.a, e.dtype, index),
                             lambda: self.emit_as(e.b, e.dtype, index), ll_type(e.dtype))

    def _emit_Call(self, e: Call, index: bool) -> ir.Value:
        dt = e.dtype
        if e.fn == "abs":
            if len(e.args) != 1:
                raise CodegenError(f"abs takes one argument: {e!r}")
            v = self.emit_as(e.args[0], dt, index)
            if dt.is_float:
                return self.builder.call(self._intrinsic("llvm.fabs", dt), [v])
            b = self.builder
            neg = b.icmp_signed("<", v, ir.Constant(v.type, 0))
            return b.select(neg, b.sub(ir.Constant(v.type, 0), v), v)
        if e.fn not in _INTRINSIC_FUNCS and e.fn not in _LIBM_FUNCS:
            raise CodegenError(f"unknown math function {e.fn!r}")
        if len(e.args) != 1:
            raise CodegenError(f"{e.fn} takes one argument: {e!r}")
        ft = dt if dt.is_float else f64
        v = self.emit_as(e.args[0], ft, index)
        fn = self._libm(e.fn, ft) if e.fn in _LIBM_FUNCS else self._intrinsic("llvm." + e.fn, ft)
        return self.convert(self.builder.call(fn, [v]), ft, dt)

    def _emit_Bin(self, e: Bin, index: bool) -> ir.Value:
        dt = e.dtype
        if is_bool(dt):
            raise CodegenError(f"arithmetic with a bool result: {e!r}")
        if e.op == "div" and not dt.is_float:
            # true division always gives a float; an int result truncates it
            q = self._emit_Bin(Bin("div", e.a, e.b, f64), index)
            return self.convert(q, f64, dt)
        a = self.emit_as(e.a, dt, index)
        b = self.emit_as(e.b, dt, index)
        if dt.is_float:
            return self._float_bin(e.op, a, b, dt)
        return self._int_bin(e.op, a, b, dt, index)

    def _float_bin(self, op: str, a: ir.Value, b: ir.Value, dt: DType) -> ir.Value:
        bd = self.builder
        if op == "add":
            return bd.fadd(a, b, flags=self.fp_flags)
        if op == "sub":
            return bd.fsub(a, b, flags=self.fp_flags)
        if op == "mul":
            return bd.fmul(a, b, flags=self.fp_flags)
        if op == "div":
            return bd.fdiv(a, b)
        if op == "min":
            return bd.select(bd.fcmp_ordered("<", b, a), b, a)
        if op == "max":
            return bd.select(bd.fcmp_ordered(">", b, a), b, a)
        if op == "pow":
            return bd.call(self._intrinsic("llvm.pow", dt, 2), [a, b])
        if op == "mod":
            return self._float_mod(a, b, dt)
        if op == "fdiv":
            return self._float_floordiv(a, b, dt)
        raise CodegenError(f"unknown arithmetic operator {op!r}")

    def _float_mod(self, a: ir.Value, b: ir.Value, dt: DType) -> ir.Value:
        """Python's float ``a % b`` (CPython ``float_rem``)."""
        bd = self.builder
        zero = self._fconst(dt, 0.0)
        m = bd.frem(a, b)
        nz = bd.fcmp_unordered("!=", m, zero)
        differ = bd.xor(bd.fcmp_ordered("<", b, zero), bd.fcmp_ordered("<", m, zero))
        adjusted = bd.select(bd.and_(nz, differ), bd.fadd(m, b), m)
        signed_zero = bd.call(self._intrinsic("llvm.copysign", dt, 2), [zero, b])
        return bd.select(nz, adjusted, signed_zero)

    def _float_floordiv(self, a: ir.Value, b: ir.Value, dt: DType) -> ir.Value:
        """Python's float ``a // b`` (CPython ``_float_div_mod``; ``b == 0``
        gives ``a / b`` like numpy, where Python raises)."""
        bd = self.builder
        zero, one, half = (self._fconst(dt, x) for x in (0.0, 1.0, 0.5))
        m = bd.frem(a, b)
        div = bd.fdiv(bd.fsub(a, m), b)
        nz = bd.fcmp_unordered("!=", m, zero)
        differ = bd.xor(bd.fcmp_ordered("<", b, zero), bd.fcmp_ordered("<", m, zero))
        div = bd.select(bd.and_(nz, differ), bd.fsub(div, one), div)
        fl = bd.call(self._intrinsic("llvm.floor", dt), [div])
        fl = bd.select(bd.fcmp_ordered(">", bd.fsub(div, fl), half), bd.fadd(fl, one), fl)
        quot = bd.fdiv(a, b)
        signed_zero = bd.call(self._intrinsic("llvm.copysign", dt, 2), [zero, quot])
        res = bd.select(bd.fcmp_unordered("!=", div, zero), fl, signed_zero)
        return bd.select(bd.fcmp_ordered("==", b, zero), quot, res)

    def _int_bin(self, op: str, a: ir.Value, b: ir.Value, dt: DType, index: bool) -> ir.Value:
        bd = self.builder
        flags = ["nsw"] if index else ()
        if op == "add":
            return bd.add(a, b, flags=flags)
        if op == "sub":
            return bd.sub(a, b, flags=flags)
        if op == "mul":
            return bd.mul(a, b, flags=flags)
        if op == "min":
            return bd.select(bd.icmp_signed("<", b, a), b, a)
        if op == "max":
            return bd.select(bd.icmp_signed(">", b, a), b, a)
        if op in ("fdiv", "mod"):
            return self._int_floor_divmod(op, a, b)
        if op == "pow":
            return bd.call(self._ipow(dt), [a, b])
        raise CodegenError(f"unknown arithmetic operator {op!r}")

    def _int_floor_divmod(self, op: str, a: ir.Value, b: ir.Value) -> ir.Value:
        """``a // b`` or ``a % b`` on fixed-width integers, as NumPy 2 computes
        them: floored; ``x // 0`` and ``x % 0`` give 0; ``MIN // -1`` wraps to
        ``MIN`` (and ``x % -1`` is 0). The hardware divide never sees 0 or -1,
        the two divisors that trap (SIGFPE) or are undefined in LLVM; for a
        constant divisor (every subscript and loop bound) the guards fold away."""
        bd = self.builder
        zero, one, minus_one = (ir.Constant(a.type, v) for v in (0, 1, -1))
        by_zero = bd.icmp_signed("==", b, zero)
        by_minus_one = bd.icmp_signed("==", b, minus_one)
        d = bd.select(bd.or_(by_zero, by_minus_one), one, b)
        r = bd.srem(a, d)
        # floor semantics: fix up when the remainder's sign differs from d's
        adjust = bd.and_(bd.icmp_signed("!=", r, zero),
                         bd.icmp_signed("<", bd.xor(r, d), zero))
        if op == "mod":
            m = bd.add(r, bd.select(adjust, d, zero))
            return bd.select(by_zero, zero, m)  # x % -1: r is already 0
        q = bd.sub(bd.sdiv(a, d), bd.zext(adjust, a.type))
        q = bd.select(by_minus_one, bd.sub(zero, a), q)  # wraps: MIN // -1 == MIN
        return bd.select(by_zero, zero, q)

    def _ipow(self, dt: DType) -> ir.Function:
        """An internal helper computing Python's ``int ** int`` (wrapping;
        a negative exponent gives ``int(base ** exp)``)."""
        name = f"polyop.ipow.{dt.name}"
        fn = self.module.globals.get(name)
        if fn is not None:
            return fn
        ty = ll_type(dt)
        fn = ir.Function(self.module, ir.FunctionType(ty, [ty, ty]), name)
        fn.linkage = "internal"
        fn.attributes.add("nounwind")
        base, exp = fn.args
        c = lambda v: ir.Constant(ty, v)  # noqa: E731
        entry, neg, loop, done = (fn.append_basic_block(n) for n in
                                  ("entry", "neg", "loop", "done"))
        b = ir.IRBuilder(entry)
        b.cbranch(b.icmp_signed("<", exp, c(0)), neg, loop)
        b.position_at_end(neg)
        # |base| > 1 → |result| < 1 → 0; base 1 → 1; base -1 → ±1
        odd = b.trunc(exp, ir.IntType(1))
        minus_one = b.select(odd, c(-1), c(1))
        r_neg = b.select(b.icmp_signed("==", base, c(1)), c(1),
                         b.select(b.icmp_signed("==", base, c(-1)), minus_one, c(0)))
        b.ret(r_neg)
        b.position_at_end(loop)
        acc = b.phi(ty)
        bb = b.phi(ty)
        ee = b.phi(ty)
        odd = b.trunc(ee, ir.IntType(1))
        acc2 = b.select(odd, b.mul(acc, bb), acc)
        ee2 = b.lshr(ee, c(1))
        bb2 = b.mul(bb, bb)
        b.cbranch(b.icmp_signed("==", ee2, c(0)), done, loop)
        acc.add_incoming(c(1), entry)
        acc.add_incoming(acc2, loop)
        bb.add_incoming(base, entry)
        bb.add_incoming(bb2, loop)
        ee.add_incoming(exp, entry)
        ee.add_incoming(ee2, loop)
        b.position_at_end(done)
        res = b.phi(ty)
        res.add_incoming(acc2, loop)
        b.ret(res)
        return fn
