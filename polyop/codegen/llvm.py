"""polyop loop IR → an LLVM module (llvmlite ``ir.Module``).

Contract: in, a ``polyop.ir.Function`` whose loops are ``serial``,
``parallel``, ``vector`` or ``unrolled``, and the target (its vector width);
out, one ``void`` function
``polyop_<name>`` with one argument per parameter, in order: size → ``i64``,
scalar → its type, array → ``noalias`` pointer to its element type (also
``captures(none)`` when the kernel has no parallel loop).

Shape of the generated code:

- the entry block computes each array's row-major strides once (``d1*d2``,
  ``d2``, ...) and allocates one stack slot per 0-d temporary (promoted to
  registers by SROA/mem2reg) and one 64-byte aligned stack array per local
  array (constant shape from ``fn.meta["temp_shapes"]``, constant strides; a
  small tile indexed by constants after unrolling also ends up in registers,
  through SROA or LICM's promotion of loop-invariant addresses);
- inside an outlined ``parallel`` body each local array the body uses gets a
  private copy, initialised from the shared one (first-private, like the 0-d
  temporaries the outliner passes by value);
- ``A[f] = prefetch(A[f], write)`` (``polyop.prefetch``) is a call of
  ``llvm.prefetch``, not a store;
- an ``Extern`` (a tensorized band, ``polyop.intrinsic``) is a call of its
  symbol, declared in the module with one parameter per argument: a pointer
  to the element type for arguments passed by address, ``i64`` for strides,
  the scalar's type otherwise; the JIT links or resolves the symbol;
- float ``+ - *`` and negation carry the ``contract`` flag when
  ``fn.meta["fp_contract"]`` is set (see ``polyop.build``);
- each ``For`` is emitted rotated, the shape LLVM's loop passes expect:
  bounds evaluated once in the preheader, a guard ``start < stop``, a header
  with the induction ``phi``, and a latch ``iv + step`` (``nsw``) followed by
  the exit test; ``unrolled`` loops carry ``llvm.loop.unroll.full`` on the
  back edge;
- a ``vector`` loop is emitted as explicit vector code of the target's width
  by ``polyop.codegen.vector`` (its plan, ``polyop.vector_plan``, says which
  accesses are vector loads, broadcasts or gathers), its loops marked
  vectorised and not to be unrolled (``vectorized_metadata``); one that cannot be
  vectorised exactly stays scalar with ``llvm.loop.vectorize.enable`` and
  ``unroll.disable`` (with a small constant trip count LLVM would unroll it
  fully before the loop vectorizer runs, and the SLP vectorizer may then pack
  the copies across the enclosing loop, by gathers);
- a ``parallel`` loop is outlined into an internal function that runs a
  chunk of its iterations and handed to the thread runtime, see
  ``polyop.codegen.parallel``; a parallel loop nested in another one runs
  serially inside the worker;
- expressions are emitted by ``polyop.codegen.llvm_expr``.

Example::

    >>> from polyop.ir import Function, Param, For, Store, Var, Const
    >>> from polyop.types import f64, i64
    >>> from polyop.codegen.llvm import build_module
    >>> fn = Function("fill", (Param("n", "size", i64), Param("x", "array", f64, (Var("n"),))),
    ...               (), For("i", Const(0), Var("n"), 1, Store("x", (Var("i"),), Const(1.0, f64))))
    >>> module, name = build_module(fn)
    >>> name
    'polyop_fill'
"""

from __future__ import annotations

import re
from dataclasses import replace

from llvmlite import ir

from ..errors import TargetError
from ..ir import Block, Call, Const, Extern, For, Function, If, Load, Stmt, Store, walk
from ..kinds import LoopKind
from ..types import INDEX, DType
from ..vector_plan import VectorISA, isa_of, isa_of_meta, plan_vector_loop
from .llvm_expr import ArrayRef, CodegenError, ExprLowering, alignment, ll_type
from .parallel import emit_parallel_for
from .region import emit_parallel_region
from .transpose import emit_tile_transpose
from .vector import emit_vector_for

#: the loop kinds this code generator emits (GPU bindings are not among them)
LOOP_KINDS = frozenset((LoopKind.SERIAL, LoopKind.PARALLEL, LoopKind.VECTOR, LoopKind.UNROLL))
#: alignment (bytes) of the stack arrays of local arrays
LOCAL_ALIGN = 64


def is_prefetch(s: Store) -> bool:
    """True for the store form of a prefetch hint, ``A[f] = prefetch(A[f], write)``
    (see ``polyop.prefetch``): it stores nothing.

    Example::

        >>> from polyop.ir import Call, Const, Load
        >>> from polyop.types import f32
        >>> x = Load("A", (Const(0),), f32)
        >>> is_prefetch(Store("A", x.index, Call("prefetch", (x, Const(0)), f32)))
        True
    """
    v = s.value
    return isinstance(v, Call) and v.fn == "prefetch" and len(v.args) == 2 and \
        isinstance(v.args[0], Load) and v.args[0].array == s.array and \
        v.args[0].index == s.index and isinstance(v.args[1], Const)


def copies_of_one_array(body: Stmt) -> bool:
    """True for a loop body of two or more stores to one array and nothing
    else: the copies isl's unrolling of a strip leaves in the loop over full
    strips (``A[4 * k] = ...; A[4 * k + 1] = ...``). Such a loop is marked
    ``llvm.loop.vectorize.enable`` false, so that the SLP vectorizer packs the
    copies: the loop vectorizer would interleave the copies of several
    iterations, measured up to 3.8x slower (a stencil unrolled by 4).

    Example::

        >>> from polyop.ir import Var
        >>> from polyop.types import f64
        >>> copy = lambda c: Store("A", (Var("i"), Const(c)), Const(0.0, f64))
        >>> copies_of_one_array(Block((copy(0), copy(1))))
        True
    """
    return isinstance(body, Block) and len(body.stmts) > 1 and \
        all(isinstance(s, Store) for s in body.stmts) and \
        len({s.array for s in body.stmts}) == 1


def symbol_name(fn_name: str) -> str:
    """The native symbol of kernel ``fn_name``: ``polyop_`` + the name with
    every character outside ``[A-Za-z0-9_]`` replaced by ``_``.

    Example::

        >>> symbol_name("my-kernel.v2")
        'polyop_my_kernel_v2'
    """
    return "polyop_" + re.sub(r"[^A-Za-z0-9_]", "_", fn_name)


class _LoopID(ir.values.MDValue):
    """A ``distinct`` self-referential ``llvm.loop`` node (llvmlite's
    ``add_metadata`` can build neither)."""

    def __init__(self, module: ir.Module, props: list[ir.values.MDValue]):
        super().__init__(module, [], name=str(len(module.metadata)))
        self.operands = (self, *props)

    def descr(self, buf):
        ops = ", ".join(op.get_reference() for op in self.operands)
        buf += (f"distinct !{{ {ops} }}", "\n")

    __hash__ = object.__hash__

    def __eq__(self, other):
        return self is other


class _FunctionBuilder(ExprLowering):
    """Builds the LLVM function of one ``polyop.ir.Function``."""

    def __init__(self, fn: Function, module: ir.Module, in_parallel: bool = False):
        self.fn = fn
        self.module = module
        self.values: dict[str, tuple[ir.Value, DType]] = {}
        self.arrays: dict[str, ArrayRef] = {}
        #: constant shapes of the local arrays (the other temporaries are 0-d)
        self.local_shapes: dict[str, tuple[int, ...]] = dict(fn.meta.get("temp_shapes", {}))
        # 0-d temporaries only: the parallel outliner copies these by value
        self.temp_names = frozenset(name for name, _ in fn.temps
                                    if name not in self.local_shapes)
        #: fast-math flags of float ``+ - *`` (``contract`` when opted in)
        self.fp_flags: tuple[str, ...] = ("contract",) if fn.meta.get("fp_contract") else ()
        #: the vector unit ``vector`` loops are generated for (``build_module``)
        self.isa: VectorISA = isa_of_meta(fn.meta)
        # inside an outlined parallel body: nested parallel loops run serially
        self.in_parallel = in_parallel
        self._privatised = False
        self.func: ir.Function | None = None

    def build(self) -> ir.Function:
        fn = self.fn
        arg_types = []
        for p in fn.params:
            if p.kind == "array":
                arg_types.append(ll_type(p.dtype).as_pointer())
            elif p.kind == "size":
                arg_types.append(ll_type(INDEX))
            elif p.kind == "scalar":
                arg_types.append(ll_type(p.dtype))
            else:
                raise CodegenError(f"parameter {p.name!r} has unknown kind {p.kind!r}")
        func = ir.Function(self.module, ir.FunctionType(ir.VoidType(), arg_types),
                           symbol_name(fn.name))
        func.attributes.add("nounwind")
        self.func = func
        self.builder = ir.IRBuilder(func.append_basic_block("entry"))
        # array pointers are handed to the thread runtime inside an environment
        # struct when the kernel has a parallel loop: they are captured then
        has_parallel = any(isinstance(x, For) and x.kind is LoopKind.PARALLEL
                           for x in walk(fn.body))

        arrays = []
        for p, arg in zip(fn.params, func.args, strict=True):
            arg.name = p.name
            if p.name in self.values or p.name in self.arrays:
                raise CodegenError(f"duplicate parameter {p.name!r}")
            if p.kind == "array":
                arg.add_attribute("noalias")
                if not has_parallel:
                    arg.add_attribute("captures(none)")
                arg.add_attribute("nonnull")
                arrays.append((p, arg))
                self.arrays[p.name] = ArrayRef(arg, p.dtype, None)
            else:
                self.values[p.name] = (arg, INDEX if p.kind == "size" else p.dtype)

        # strides, computed once: stride_k = d_{k+1} * ... * d_{n-1}
        for p, arg in arrays:
            if not p.shape:
                continue
            dims = [self.emit_as(d, INDEX, index=True) for d in p.shape[1:]]
            strides: list[ir.Value | None] = [None]
            acc = None
            for d in reversed(dims):
                acc = d if acc is None else self.builder.mul(acc, d, flags=["nsw"])
                strides.append(acc)
            self.arrays[p.name] = ArrayRef(arg, p.dtype, tuple(reversed(strides)))

        for name, dt in fn.temps:
            if name in self.arrays or name in self.values:
                raise CodegenError(f"temporary {name!r} clashes with a parameter")
            if name in self.local_shapes:
                self.arrays[name] = self._local_array(name, dt)
            else:
                slot = self.builder.alloca(ll_type(dt), name=name)
                self.arrays[name] = ArrayRef(slot, dt, None)

        self.stmt(fn.body)
        self.builder.ret_void()
        return func

    # -- statements --------------------------------------------------------------

    def stmt(self, s: Stmt) -> None:
        if isinstance(s, Store) and is_prefetch(s):
            self._prefetch(s)
        elif isinstance(s, Store):
            ptr, dt = self.address(s.array, s.index, s)
            v = self.emit_as(s.value, dt)
            if s.atomic:  # a parallel reduction; the region's join orders it
                op = ("f" if dt.is_float else "") + s.atomic
                self.builder.atomic_rmw(op, ptr, v, "monotonic")
            else:
                self.builder.store(v, ptr, align=alignment(dt))
        elif isinstance(s, Extern):
            self._extern(s)
        elif isinstance(s, Block):
            k = 0
            while k < len(s.stmts):  # the rows of a tile transposed in registers
                done = emit_tile_transpose(self, s.stmts, k)
                if not done:
                    self.stmt(s.stmts[k])
                k += done or 1
        elif isinstance(s, If):
            self._if(s)
        elif isinstance(s, For):
            self._for(s)
        else:
            raise CodegenError(f"cannot emit statement {s!r}")

    def _prefetch(self, s: Store) -> None:
        """``A[f] = prefetch(A[f], write)``: ``llvm.prefetch`` of ``&A[f]`` (for
        reading or writing, highest locality); nothing is stored."""
        load, write = s.value.args
        ptr, _ = self.address(load.array, load.index, s)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = self.module.globals.get("llvm.prefetch.p0")
        if fn is None:
            fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                             "llvm.prefetch.p0")
        self.builder.call(fn, [self.builder.bitcast(ptr, i8p), ir.Constant(i32, int(write.value)),
                               ir.Constant(i32, 3), ir.Constant(i32, 1)])

    def _extern(self, s: Extern) -> None:
        """``symbol(args...)``: by-address arguments as element pointers, the
        others by value in their own type."""
        args = []
        for a, byref in zip(s.args, s.byref, strict=True):
            if byref:
                if not isinstance(a, Load):
                    raise CodegenError(f"{s.name}: argument {a!r} passed by address is not "
                                       "an array element")
                args.append(self.address(a.array, a.index, s)[0])
            else:
                args.append(self.emit(a, index=a.dtype == INDEX))
        ty = ir.FunctionType(ir.VoidType(), [a.type for a in args])
        fn = self.module.globals.get(s.symbol)
        if fn is None:
            fn = ir.Function(self.module, ty, s.symbol)
            fn.attributes.add("nounwind")
        elif fn.function_type != ty:
            raise CodegenError(f"{s.name}: called as {ty} and as {fn.function_type}")
        self.builder.call(fn, args)

    def _if(self, s: If) -> None:
        self.emit_if(self.emit_bool(s.cond), lambda: self.stmt(s.then),
                     None if s.else_ is None else lambda: self.stmt(s.else_))

    def emit_if(self, cond: ir.Value, then, else_=None) -> None:
        """``if (cond) then() else else_()``, the arms emitted by callbacks."""
        b = self.builder
        then_bb = b.append_basic_block("if.then")
        end_bb = b.append_basic_block("if.end")
        else_bb = b.append_basic_block("if.else") if else_ is not None else end_bb
        b.cbranch(cond, then_bb, else_bb)
        b.position_at_end(then_bb)
        then()
        b.branch(end_bb)
        if else_ is not None:
            b.position_at_end(else_bb)
            else_()
            b.branch(end_bb)
        b.position_at_end(end_bb)

    def _for(self, s: For) -> None:
        if s.kind.is_gpu:
            raise TargetError(f"loops bound to GPU axes: build for target='cuda' or 'opencl' "
                              f"(loop {s.var} is bound to {s.kind})")
        if s.kind not in LOOP_KINDS:
            raise CodegenError(f"loop {s.var!r} has unknown kind {s.kind!r}")
        if not isinstance(s.step, int) or s.step <= 0:
            raise CodegenError(f"loop {s.var!r} needs a positive constant step, got {s.step!r}")
        if s.var in self.values or s.var in self.arrays:
            raise CodegenError(f"loop variable {s.var!r} shadows another name")
        if s.kind is LoopKind.PARALLEL and not self.in_parallel:
            emit_parallel_for(self, s)
            return
        if s.kind is LoopKind.SERIAL and not self.in_parallel and emit_parallel_region(self, s):
            return  # one team region around the loop (polyop.codegen.region)
        start = self.emit_as(s.start, INDEX, index=True)
        stop = self.emit_as(s.stop, INDEX, index=True)
        if s.kind is LoopKind.VECTOR:
            plan = plan_vector_loop(s, self.isa, self.temp_names,
                                    {name: ref.dtype for name, ref in self.arrays.items()})
            if plan.vectorised:
                emit_vector_for(self, s, start, stop, plan, self.isa.fma)
                return
        self.emit_loop(s, start, stop)

    def _local_array(self, name: str, dt: DType) -> ArrayRef:
        """A stack array for local array ``name`` in the entry block (aligned
        to 64 bytes, a cache line), with constant row-major strides."""
        shape = self.local_shapes[name]
        count = 1
        for n in shape:
            count *= n
        ty = ir.ArrayType(ll_type(dt), count)
        with self.builder.goto_entry_block():
            slot = self.builder.alloca(ty, name=name)
            slot.align = LOCAL_ALIGN
            zero = ir.Constant(ll_type(INDEX), 0)
            ptr = self.builder.gep(slot, [zero, zero], inbounds=True, name=f"{name}.ptr")
        strides: list[ir.Value | None] = []
        for k in range(len(shape)):
            inner = 1
            for n in shape[k + 1:]:
                inner *= n
            strides.append(None if inner == 1 else ir.Constant(ll_type(INDEX), inner))
        return ArrayRef(ptr, dt, tuple(strides))

    def _privatise_local_arrays(self) -> None:
        """In an outlined parallel body: give each local array the body uses a
        private copy, initialised from the shared one (first-private, like the
        0-d temporaries, which the outliner copies by value)."""
        b = self.builder
        i8p = ir.IntType(8).as_pointer()
        for name in self.local_shapes:
            ref = self.arrays.get(name)
            if ref is None:
                continue  # not used in this body
            private = self._local_array(name, ref.dtype)
            count = 1
            for n in self.local_shapes[name]:
                count *= n
            nbytes = ir.Constant(ll_type(INDEX), count * ref.dtype.bits // 8)
            b.call(self._memcpy(), [b.bitcast(private.ptr, i8p), b.bitcast(ref.ptr, i8p),
                                    nbytes, ir.Constant(ir.IntType(1), 0)])
            self.arrays[name] = private

    def _memcpy(self) -> ir.Function:
        name = "llvm.memcpy.p0.p0.i64"
        fn = self.module.globals.get(name)
        if fn is None:
            i8p = ir.IntType(8).as_pointer()
            fn = ir.Function(self.module, ir.FunctionType(
                ir.VoidType(), [i8p, i8p, ll_type(INDEX), ir.IntType(1)]), name)
        return fn

    def emit_loop(self, s: For, start: ir.Value, stop: ir.Value) -> None:
        """Emit ``for (s.var = start; s.var < stop; s.var += s.step) s.body``,
        rotated, with bounds already computed as ``i64`` values."""
        self.rotated_loop(s.var, start, stop, s.step, lambda: self.stmt(s.body),
                          self._loop_metadata(s))

    def rotated_loop(self, var: str, start: ir.Value, stop: ir.Value, step: int, body,
                     md=None, exit_value: bool = False) -> ir.Value | None:
        """``for (var = start; var < stop; var += step) body()``, rotated; ``md``:
        its ``llvm.loop`` node. With ``exit_value``, returns the first value of
        ``var`` the loop did not run (``start`` when it ran none)."""
        if self.in_parallel and not self._privatised:
            # the first loop of an outlined parallel body is the chunk loop
            self._privatised = True
            self._privatise_local_arrays()
        b = self.builder
        body_bb = b.append_basic_block(f"{var}.body")
        exit_bb = b.append_basic_block(f"{var}.exit")
        b.cbranch(b.icmp_signed("<", start, stop), body_bb, exit_bb)
        pre_bb = b.block

        b.position_at_end(body_bb)
        iv = b.phi(ll_type(INDEX), name=var)
        self.values[var] = (iv, INDEX)
        body()
        nxt = b.add(iv, ir.Constant(ll_type(INDEX), step), name=f"{var}.next", flags=["nsw"])
        latch = b.cbranch(b.icmp_signed("<", nxt, stop), body_bb, exit_bb)
        latch_bb = b.block
        iv.add_incoming(start, pre_bb)
        iv.add_incoming(nxt, latch_bb)
        del self.values[var]

        if md is not None:
            latch.set_metadata("llvm.loop", md)
        b.position_at_end(exit_bb)
        if not exit_value:
            return None
        out = b.phi(ll_type(INDEX), name=f"{var}.end")
        out.add_incoming(start, pre_bb)
        out.add_incoming(nxt, latch_bb)
        return out

    def entry_alloca(self, ty: ir.Type, name: str = "") -> ir.AllocaInstr:
        """A stack slot allocated in the function's entry block (once per
        call, wherever the builder currently is)."""
        with self.builder.goto_entry_block():
            return self.builder.alloca(ty, name=name)

    def _prop(self, name: str, value=None):
        ops = [ir.MetaDataString(self.module, name)]
        if value is not None:
            ops.append(value)
        return self.module.add_metadata(ops)

    def vectorized_metadata(self) -> _LoopID:
        """``llvm.loop.isvectorized`` and ``llvm.loop.unroll.disable``: the
        loops of a vectorised ``vector`` loop (main and epilogue), which LLVM's
        loop vectorizer must leave alone, and its unroller too. The loop's
        iterations are independent (``vectorize`` takes coincident loops
        only), so out-of-order cores overlap them unrolled or not; LLVM's
        runtime unrolling (four copies and a remainder loop) saved a little
        loop control and cost more on the short rows of PolyBench MEDIUM (Zen
        5, 1 thread: covariance 0.89 -> 0.67 ms, symm 0.56 -> 0.39, trmm 0.37
        -> 0.22, jacobi-2d 2.75 -> 2.37; deriche, whose rows of 480 are the
        longest there, lost 7-10 %, unrolled by two it lost 4 %)."""
        return _LoopID(self.module, [self._prop("llvm.loop.isvectorized",
                                                ir.Constant(ir.IntType(32), 1)),
                                     self._prop("llvm.loop.unroll.disable")])

    def _loop_metadata(self, s: For):
        m = self.module
        prop = self._prop
        if s.kind is LoopKind.VECTOR:
            return _LoopID(m, [prop("llvm.loop.vectorize.enable", ir.Constant(ir.IntType(1), 1)),
                               prop("llvm.loop.unroll.disable")])
        if s.kind is LoopKind.UNROLL:
            return _LoopID(m, [prop("llvm.loop.unroll.full")])
        if s.kind is LoopKind.SERIAL and copies_of_one_array(s.body):
            return _LoopID(m, [prop("llvm.loop.vectorize.enable", ir.Constant(ir.IntType(1), 0))])
        return None


def build_module(fn: Function, target=None) -> tuple[ir.Module, str]:
    """Translate ``fn`` to a fresh llvmlite module; returns the module and the
    symbol of the kernel function in it (see ``symbol_name``). ``vector``
    loops are generated for the vector unit of ``target`` (anything
    ``polyop.vector_plan.isa_of`` takes: a ``polyop.Target`` or its string, a
    width in bits), by default ``fn.meta["target"]``'s, else the host's; a
    ``VectorISA`` in ``fn.meta["vector_isa"]`` overrides both (code for another
    width, still run by the host: LLVM splits or widens the vectors).

    Raises ``CodegenError`` for malformed IR. A module with a ``parallel``
    loop calls the thread runtime's ``polyop_rt_parallel_for`` (declared
    here, defined by ``polyop.codegen.parallel.ensure_runtime()``).

    Example::

        >>> from polyop.ir import Function, Block
        >>> module, name = build_module(Function("nop", (), (), Block(())))
        >>> "define void @\\"polyop_nop\\"()" in str(module)
        True
    """
    if "vector_isa" not in fn.meta:  # outlined parallel bodies read it from there too
        isa = isa_of(target if target is not None else fn.meta.get("target"))
        fn = replace(fn, meta={**fn.meta, "vector_isa": isa})
    module = ir.Module(name=symbol_name(fn.name))
    func = _FunctionBuilder(fn, module).build()
    return module, func.name
