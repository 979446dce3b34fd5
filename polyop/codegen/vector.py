"""``vector`` loops → explicit LLVM vector code of the target's width.

Contract: in, a ``For`` of kind ``vector`` whose ``polyop.vector_plan.VectorPlan``
is vectorised, its bounds already emitted as ``i64`` values, inside a
``polyop.codegen.llvm`` function builder; out, the loop as

- a main loop ``for (v = start; v + (lanes - 1) * step < stop; v += lanes * step)``
  whose body runs each statement for ``lanes`` iterations at once, on values of
  type ``<lanes x T>``: one vector load or store per contiguous access, a
  broadcast (``insertelement`` + ``shufflevector``) per uniform value, for a
  load at a stride of 2 to ``MAX_STRIDE`` elements that many vector loads
  (none past the last lane's element) picked apart by ``shufflevector``, for
  such a store the lanes shuffled into place and stored under constant masks
  (``llvm.masked.store``), one scalar load or store per lane for the other
  accesses (gathers are the last
  resort: built from scalar loads and ``insertelement``, which every target
  has), lane-wise arithmetic, comparisons, selects and conversions (a side
  of a conditional that reads memory reads it only in the lanes that take
  that side: ``llvm.masked.load``, ``llvm.masked.gather``; AVX2 and AVX-512
  mask the access, other targets test each lane), and
  ``llvm.fma`` for ``a * b ± c`` when the build allows contraction
  (``fp_contract``) and the target has FMA;
- with a constant trip count of at most ``MAX_STRAIGHT_VECTORS`` vectors,
  straight-line vector code instead of the main loop, so that a register tile
  (a local array indexed by the vector loop) is accessed at constant offsets
  and SROA keeps it in whole vector registers; what a constant trip count
  leaves after whole vectors runs in vectors of half, quarter, ... the width
  (``VectorPlan.pieces``: 24 iterations at 16 lanes are 16 + 8);
- without a constant trip count, after the main loop, one vector each of
  half, quarter, ... the width down to 2 lanes, each run when that many
  iterations remain (``VectorPlan.pieces``' ``IF_ROOM``);
- the remaining iterations (at most one, or fewer than the narrowest
  vector) by the scalar loop (the epilogue), omitted when none remain.
  Halving vectors and an epilogue rather than masking: masked loads and
  stores exist on AVX2 and AVX-512 but not on NEON, and a masked main loop
  pays for the mask on every iteration.

Both loops carry ``llvm.loop.isvectorized``, so LLVM's loop vectorizer leaves
them alone. Every lane computes exactly what the scalar loop computes for that
iteration, with the same operations in the same types (no reassociation, no
fast-math): the results are bit-identical to the scalar loop, except that
``fp_contract`` may fuse differently in the vector and epilogue parts.

Example::

    >>> from polyop.ir import Function, Param, For, Store, Load, Bin, Var, Const
    >>> from polyop.types import f32, i64
    >>> from polyop.codegen.llvm import build_module
    >>> i, n = Var("i"), Var("n")
    >>> fn = Function("dbl", (Param("n", "size", i64), Param("x", "array", f32, (n,))), (),
    ...               For("i", Const(0), n, 1, Store("x", (i,), Bin(
    ...                   "add", Load("x", (i,), f32), Load("x", (i,), f32), f32)), "vector"))
    >>> "fadd <8 x float>" in str(build_module(fn, target=256)[0])
    True
"""

from __future__ import annotations

from llvmlite import ir

from ..ir import (
    BOOL,
    Bin,
    Block,
    Call,
    Cast,
    Cmp,
    Const,
    For,
    If,
    Load,
    Logic,
    Neg,
    Not,
    Select,
    Store,
    Var,
    speculatable,
)
from ..types import INDEX, DType, f64
from ..vector_plan import IF_ROOM, MAX_STRAIGHT_VECTORS, VectorPlan
from .llvm_expr import CodegenError, alignment, is_bool, ll_type, promote_cmp
from .outline import declare

_I32 = ir.IntType(32)
_ICMP = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}


def emit_vector_for(fb, s: For, start: ir.Value, stop: ir.Value, plan: VectorPlan,
                    fma: bool) -> None:
    """Emit vector loop ``s`` (module docstring) in function builder ``fb``
    (a ``polyop.codegen.llvm._FunctionBuilder``) as ``plan.pieces()`` says;
    ``fma``: the target has fused multiply-add."""
    b = fb.builder
    i64 = ll_type(INDEX)
    step = s.step
    rest = start  # the first iteration not run yet

    def advance(by: int) -> ir.Value:
        return b.add(rest, ir.Constant(i64, by * step), flags=["nsw"])

    for width, count in plan.pieces():
        if width == 1:  # the scalar epilogue
            fb.rotated_loop(s.var, rest, stop, step, lambda: fb.stmt(s.body),
                            fb.vectorized_metadata())
            continue
        body = _VectorBody(fb, s, plan, width, fma)
        if count == IF_ROOM:
            rest = _tail_vector(fb, s.var, rest, stop, width, step, body.emit)
        elif count is None:
            last = b.sub(stop, ir.Constant(i64, (width - 1) * step), flags=["nsw"])
            rest = fb.rotated_loop(s.var, rest, last, width * step, body.emit,
                                   fb.vectorized_metadata(), exit_value=True)
        elif count <= MAX_STRAIGHT_VECTORS:  # straight-line: constant offsets
            for q in range(count):
                fb.values[s.var] = (advance(q * width) if q else rest, INDEX)
                body.emit()
                del fb.values[s.var]
            rest = advance(count * width)
        else:
            end = advance(count * width)
            fb.rotated_loop(s.var, rest, end, width * step, body.emit,
                            fb.vectorized_metadata())
            rest = end


def _tail_vector(fb, var: str, rest: ir.Value, stop: ir.Value, width: int, step: int,
                 body) -> ir.Value:
    """``if (rest + (width - 1) * step < stop) { body() at rest; rest += width
    * step }``: one vector of ``width`` lanes when that many iterations
    remain; returns the first iteration not run."""
    b = fb.builder
    i64 = ll_type(INDEX)
    last = b.add(rest, ir.Constant(i64, (width - 1) * step), flags=["nsw"])
    room = b.icmp_signed("<", last, stop)
    end = b.add(rest, ir.Constant(i64, width * step), flags=["nsw"])
    before = b.block
    then_bb = b.append_basic_block(f"{var}.tail{width}")
    join_bb = b.append_basic_block(f"{var}.tail{width}.end")
    b.cbranch(room, then_bb, join_bb)
    b.position_at_end(then_bb)
    fb.values[var] = (rest, INDEX)
    body()
    del fb.values[var]
    b.branch(join_bb)
    then_end = b.block
    b.position_at_end(join_bb)
    out = b.phi(i64, name=f"{var}.rest")
    out.add_incoming(end, then_end)
    out.add_incoming(rest, before)
    return out


class _VectorBody:
    """Emits the body of one vector iteration; ``fb.values[var]`` holds the
    iteration of lane 0."""

    def __init__(self, fb, loop: For, plan: VectorPlan, lanes: int, fma: bool):
        self.fb, self.loop, self.plan = fb, loop, plan
        self.lanes = lanes
        # explicit FMAs only where contraction is allowed and the target has them
        self.fma = fma and "contract" in fb.fp_flags
        #: private local scalars: their value in this vector iteration
        self.private: dict[str, ir.Value] = {}
        #: the lanes whose loads run (inside a side of a conditional), or None: all
        self.mask: ir.Value | None = None

    @property
    def b(self) -> ir.IRBuilder:
        return self.fb.builder

    def vtype(self, dt: DType) -> ir.VectorType:
        return ir.VectorType(ll_type(dt), self.lanes)

    def emit(self) -> None:
        self.private = {}
        self.stmt(self.loop.body)
        for name, v in self.private.items():  # live out: the last lane's value
            last = self.b.extract_element(v, ir.Constant(_I32, self.lanes - 1))
            self.b.store(last, self.fb.arrays[name].ptr)

    # -- statements --------------------------------------------------------------

    def stmt(self, s) -> None:
        fb, b = self.fb, self.b
        if isinstance(s, Block):
            for x in s.stmts:
                self.stmt(x)
        elif isinstance(s, If):  # the plan admits only conditions uniform across lanes
            fb.emit_if(fb.emit_bool(s.cond), lambda: self.stmt(s.then),
                       None if s.else_ is None else lambda: self.stmt(s.else_))
        elif isinstance(s, Store) and (s.array not in self.plan.private if not s.index
                                       else not self.plan.varying(s)):
            fb.stmt(s)  # a uniform prefetch, or a shared local scalar given a uniform value
        elif isinstance(s, Store):
            dt = fb.arrays[s.array].dtype
            v = self.vec(s.value, dt)
            if not s.index:
                self.private[s.array] = v
            elif self.plan.access(s.index) == "contiguous":
                b.store(v, self.vector_ptr(s.array, s.index, s), align=alignment(dt))
            elif self.plan.access(s.index) == "strided":
                self._strided_store(s, v, dt)
            else:  # a scatter, lane by lane
                def put(lane: int) -> None:
                    ptr, _ = fb.address(s.array, s.index, s)
                    b.store(b.extract_element(v, ir.Constant(_I32, lane)), ptr,
                            align=alignment(dt))

                self.per_lane(put)
        else:
            raise CodegenError(f"cannot vectorise statement {s!r}")

    def vector_ptr(self, array: str, index: tuple, what, inbounds: bool = True) -> ir.Value:
        """``<lanes x T>*`` at the element lane 0 accesses."""
        ptr, dt = self.fb.address(array, index, what, inbounds)
        return self.b.bitcast(ptr, self.vtype(dt).as_pointer())

    def per_lane(self, fn) -> list:
        """``fn(lane)`` for each lane with the loop variable at that lane's iteration."""
        fb, var = self.fb, self.loop.var
        base = fb.values[var][0]
        out = []
        for lane in range(self.lanes):
            iv = base if lane == 0 else self.b.add(
                base, ir.Constant(base.type, lane * self.loop.step), flags=["nsw"])
            fb.values[var] = (iv, INDEX)
            out.append(fn(lane))
        fb.values[var] = (base, INDEX)
        return out

    # -- expressions ---------------------------------------------------------------

    def splat(self, x: ir.Value) -> ir.Value:
        """``<lanes x T>`` with every lane ``x``."""
        ty = ir.VectorType(x.type, self.lanes)
        if isinstance(x, ir.Constant) and not isinstance(x.constant, ir.Value):
            return ir.Constant(ty, x.constant)
        one = self.b.insert_element(ir.Constant(ty, ir.Undefined), x, ir.Constant(_I32, 0))
        return self.b.shuffle_vector(one, ir.Constant(ty, ir.Undefined),
                                     ir.Constant(ir.VectorType(_I32, self.lanes), 0))

    def vec(self, e, dt: DType) -> ir.Value:
        """``e`` for every lane, as ``<lanes x dt>``: computed once as a scalar and
        broadcast when it is the same for every lane."""
        if not self.plan.varying(e) and (self.mask is None or speculatable(e)):
            return self.splat(self.fb.emit_as(e, dt))
        method = getattr(self, "_" + type(e).__name__)
        return self.convert(method(e), e.dtype, dt)

    def _Var(self, e: Var) -> ir.Value:
        base, _ = self.fb.values[e.name]  # the loop variable: base + lane * step
        offsets = ir.Constant(self.vtype(INDEX), [k * self.loop.step for k in range(self.lanes)])
        return self.convert(self.b.add(self.splat(base), offsets, flags=["nsw"]), INDEX, e.dtype)

    def _Load(self, e: Load) -> ir.Value:
        fb, b = self.fb, self.b
        if not e.index:
            dt = fb.arrays[e.array].dtype
            v = self.private[e.array]
        else:
            dt = fb.arrays[e.array].dtype
            if self.mask is not None:
                v = self._masked_load(e, dt)
            elif self.plan.access(e.index) == "contiguous":
                v = b.load(self.vector_ptr(e.array, e.index, e), align=alignment(dt))
            elif self.plan.access(e.index) == "strided":
                v = self._strided_load(e, dt)
            else:  # a gather, lane by lane
                def get(lane: int) -> ir.Value:
                    ptr, _ = fb.address(e.array, e.index, e)
                    return b.load(ptr, align=alignment(dt))

                v = ir.Constant(self.vtype(dt), ir.Undefined)
                for lane, x in enumerate(self.per_lane(get)):
                    v = b.insert_element(v, x, ir.Constant(_I32, lane))
        return self.convert(v, dt, e.dtype)

    def _strided_load(self, e: Load, dt: DType) -> ir.Value:
        """Lanes ``k`` elements apart (``k = plan.stride``): the elements from
        lane 0's to the last lane's, read as at most ``k`` whole vectors, the
        last one ending on the last lane's element (so nothing past it is
        read), then picked apart by shuffles."""
        b, lanes, k = self.b, self.lanes, self.plan.stride(e.index)
        vty = self.vtype(dt)
        first, _ = self.fb.address(e.array, e.index, e)
        last = k * (lanes - 1)
        starts = list(range(0, last - lanes + 2, lanes))
        if starts[-1] + lanes - 1 < last:
            starts.append(last - lanes + 1)
        parts = [b.load(b.bitcast(b.gep(first, [ir.Constant(ll_type(INDEX), s)], inbounds=True),
                                  vty.as_pointer()), align=alignment(dt)) for s in starts]
        picks = []
        for p in range(0, last + 1, k):
            q = next(q for q, s in enumerate(starts) if s <= p < s + lanes)
            picks.append(q * lanes + p - starts[q])
        if len(parts) > 2:  # pairs joined: two vectors of 2 * lanes
            undef = ir.Constant(vty, ir.Undefined)
            both = ir.Constant(ir.VectorType(_I32, 2 * lanes), list(range(2 * lanes)))
            parts = [b.shuffle_vector(parts[0], parts[1], both),
                     b.shuffle_vector(parts[2], parts[3] if len(parts) > 3 else undef, both)]
        return b.shuffle_vector(parts[0], parts[1], ir.Constant(ir.VectorType(_I32, lanes), picks))

    def _strided_store(self, s: Store, v: ir.Value, dt: DType) -> None:
        """Lanes ``k`` elements apart: vectors over the span from lane 0's
        element, each with the lanes that land in it moved into place by a
        shuffle and stored under a constant mask (``llvm.masked.store``): the
        elements between them are not touched."""
        b, lanes, k = self.b, self.lanes, self.plan.stride(s.index)
        vty = self.vtype(dt)
        first, _ = self.fb.address(s.array, s.index, s, False)
        mty = ir.VectorType(ir.IntType(1), lanes)
        fn = declare(self.fb.module, f"llvm.masked.store.v{lanes}{ll_type(dt).intrinsic_name}.p0",
                     ir.FunctionType(ir.VoidType(), [vty, vty.as_pointer(), _I32, mty]))
        for start in range(0, k * (lanes - 1) + 1, lanes):
            picks = [(start + t) // k if (start + t) % k == 0 and (start + t) // k < lanes
                     else None for t in range(lanes)]
            part = b.shuffle_vector(v, ir.Constant(vty, ir.Undefined), ir.Constant(
                ir.VectorType(_I32, lanes), [0 if j is None else j for j in picks]))
            ptr = b.bitcast(b.gep(first, [ir.Constant(ll_type(INDEX), start)]), vty.as_pointer())
            mask = ir.Constant(mty, [int(j is not None) for j in picks])
            b.call(fn, [part, ptr, ir.Constant(_I32, alignment(dt)), mask])

    def _masked_load(self, e: Load, dt: DType) -> ir.Value:
        """``e`` in the lanes of ``self.mask``, zero in the others, which
        access no memory: ``llvm.masked.load`` when contiguous, else
        ``llvm.masked.gather`` (a uniform access too: its address may be
        outside the array in every lane that is off)."""
        b, ty = self.b, self.vtype(dt)
        zero, align = ir.Constant(ty, None), ir.Constant(_I32, alignment(dt))
        if self.plan.access(e.index) == "contiguous":
            ptr = self.vector_ptr(e.array, e.index, e, inbounds=False)
            fn = declare(self.fb.module,
                         f"llvm.masked.load.v{self.lanes}{ll_type(dt).intrinsic_name}.p0",
                         ir.FunctionType(ty, [ptr.type, _I32, self.mask.type, ty]))
            return b.call(fn, [ptr, align, self.mask, zero])
        ptrs = self.per_lane(lambda lane: self.fb.address(e.array, e.index, e, False)[0])
        pv = ir.Constant(ir.VectorType(ptrs[0].type, self.lanes), ir.Undefined)
        for lane, p in enumerate(ptrs):
            pv = b.insert_element(pv, p, ir.Constant(_I32, lane))
        fn = declare(self.fb.module, f"llvm.masked.gather.v{self.lanes}"
                     f"{ll_type(dt).intrinsic_name}.v{self.lanes}p0",
                     ir.FunctionType(ty, [pv.type, _I32, self.mask.type, ty]))
        return b.call(fn, [pv, align, self.mask, zero])

    def _Bin(self, e: Bin) -> ir.Value:
        dt = e.dtype
        if e.op == "div" and not dt.is_float:  # true division, then truncated
            return self.convert(self._Bin(Bin("div", e.a, e.b, f64)), f64, dt)
        if dt.is_float and self.fma and e.op in ("add", "sub"):
            fused = self._fused(e)
            if fused is not None:
                return fused
        a, c = self.vec(e.a, dt), self.vec(e.b, dt)
        if dt.is_float:
            return self.fb._float_bin(e.op, a, c, dt)
        return self.fb._int_bin(e.op, a, c, dt, False)

    def _fused(self, e: Bin) -> ir.Value | None:
        """``x * y + c``, ``c + x * y``, ``x * y - c``, ``c - x * y`` as one
        ``llvm.fma`` (contraction is allowed: the caller checked)."""
        dt = e.dtype

        def product(x) -> bool:
            return isinstance(x, Bin) and x.op == "mul" and x.dtype == dt

        if product(e.a):
            prod, other, neg_prod = e.a, e.b, False
        elif product(e.b):
            prod, other, neg_prod = e.b, e.a, e.op == "sub"
        else:
            return None
        x, y, c = self.vec(prod.a, dt), self.vec(prod.b, dt), self.vec(other, dt)
        if neg_prod:
            x = self.b.fneg(x)
        elif e.op == "sub":
            c = self.b.fneg(c)
        return self.b.call(self.intrinsic("llvm.fma", dt, 3), [x, y, c])

    def _Neg(self, e: Neg) -> ir.Value:
        v = self.vec(e.a, e.dtype)
        if e.dtype.is_float:
            return self.b.fneg(v, flags=self.fb.fp_flags)
        return self.b.sub(ir.Constant(v.type, 0), v)

    def _Cast(self, e: Cast) -> ir.Value:
        return self.vec(e.a, e.dtype)

    def _Not(self, e: Not) -> ir.Value:
        return self.b.xor(self.vec(e.a, BOOL), ir.Constant(self.vtype(BOOL), 1))

    def _Cmp(self, e: Cmp) -> ir.Value:
        ct = promote_cmp(e.a.dtype, e.b.dtype)
        if is_bool(ct) and e.op not in ("eq", "ne"):
            ct = INDEX
        a, c = self.vec(e.a, ct), self.vec(e.b, ct)
        op = _ICMP[e.op]
        if ct.is_float and not is_bool(ct):
            if e.op == "ne":  # Python's != is true for NaN
                return self.b.fcmp_unordered(op, a, c)
            return self.b.fcmp_ordered(op, a, c)
        return self.b.icmp_signed(op, a, c)

    def _Logic(self, e: Logic) -> ir.Value:  # the right side's loads masked, as a Select's
        a = self.vec(e.a, BOOL)
        c = self.under(e.b, a if e.op == "and" else self.b.xor(a, ir.Constant(a.type, 1)),
                       BOOL)
        return self.b.and_(a, c) if e.op == "and" else self.b.or_(a, c)

    def _Select(self, e: Select) -> ir.Value:
        """Both sides computed; a side that reads memory only in the lanes
        that take it (``_masked_load``), so no lane reads outside an array
        where the scalar loop would not read at all."""
        cond = self.vec(e.cond, BOOL)
        a = self.under(e.a, cond, e.dtype)
        c = self.under(e.b, self.b.xor(cond, ir.Constant(cond.type, 1)), e.dtype)
        return self.b.select(cond, a, c)

    def under(self, e, mask: ir.Value, dt: DType) -> ir.Value:
        """``vec(e, dt)`` with its loads masked by ``mask`` (and the mask of
        an enclosing conditional), unless it is speculatable."""
        if speculatable(e):
            return self.vec(e, dt)
        outer = self.mask
        self.mask = mask if outer is None else self.b.and_(outer, mask)
        try:
            return self.vec(e, dt)
        finally:
            self.mask = outer

    def _Call(self, e: Call) -> ir.Value:
        dt = e.dtype
        if e.fn == "abs":
            v = self.vec(e.args[0], dt)
            if dt.is_float:
                return self.b.call(self.intrinsic("llvm.fabs", dt), [v])
            zero = ir.Constant(v.type, 0)
            return self.b.select(self.b.icmp_signed("<", v, zero), self.b.sub(zero, v), v)
        if e.fn == "sqrt":
            ft = dt if dt.is_float else f64
            v = self.b.call(self.intrinsic("llvm.sqrt", ft), [self.vec(e.args[0], ft)])
            return self.convert(v, ft, dt)
        raise CodegenError(f"no vector form for {e.fn}()")

    def _Const(self, e: Const) -> ir.Value:  # never varying; here for completeness
        return self.splat(self.fb.emit(e))

    def intrinsic(self, name: str, dt: DType, nargs: int = 1) -> ir.Function:
        """The vector overload of ``llvm.<name>`` for ``<lanes x dt>``."""
        ty = self.vtype(dt)
        full = f"{name}.v{self.lanes}{ll_type(dt).intrinsic_name}"
        fn = self.fb.module.globals.get(full)
        if fn is None:
            fn = ir.Function(self.fb.module, ir.FunctionType(ty, [ty] * nargs), full)
        return fn

    def convert(self, v: ir.Value, src: DType, dst: DType) -> ir.Value:
        """Lane-wise ``polyop.codegen.llvm_expr.ExprLowering.convert``."""
        return self.fb.convert(v, src, dst, self.vtype(dst))
