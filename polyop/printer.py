"""C-like text of loop IR, for humans (``print(polyop.lower(k))``).

``//`` and ``%`` keep Python's floor semantics; ``min``/``max`` are functions;
loop kinds other than serial are shown as a comment before the loop; local
arrays are declared with their shape (``float acc[6][16];``); a micro-kernel
call (``ir.Extern``) shows its by-address arguments as ``&A[i][j]``.

A ``vector`` loop is shown as the code generator emits it for the target
(``polyop.vector_plan``): ``// vector x8`` over a loop that steps by the 8
lanes, in which an access contiguous in the loop is a slice, ``x[j:j + 8]``
(one vector load or store), an access at a small stride is a slice with a
step, ``x[2 * j:2 * j + 16:2]`` (vector loads and shuffles, or shuffles and
masked vector stores), any other access is ``gather(x[5 * j])`` or
``scatter(x[5 * j])`` (one access per lane), and everything else is the
same for all lanes and broadcast (a side of ``c ? a : b`` reads memory only
in the lanes where it is taken: masked loads); then the scalar loop over the
remaining iterations, ``for (; j < n; j += 1)`` (with a constant trip count, narrower
vectors first: ``// vector x4``). A vector loop that stays scalar says why:
``// vector: not vectorised, ...``.

Example::

    >>> from polyop.ir import For, Store, Var, Const
    >>> from polyop.types import f64
    >>> print(to_c(For("i", Const(0), Var("n"), 1, Store("A", (Var("i"),), Const(0.0, f64)))))
    for (i = 0; i < n; i += 1)
      A[i] = 0.0;
    >>> from polyop.vector_plan import VectorISA
    >>> print(to_c(For("i", Const(0), Var("n"), 1, Store("A", (Var("i"),), Const(0.0, f64)),
    ...                "vector"), isa=VectorISA(256)))
    // vector x4
    for (i = 0; i + 4 <= n; i += 4)
      A[i:i + 4] = 0.0;
    // vector x2 (at most once)
    for (; i + 2 <= n; i += 2)
      A[i:i + 2] = 0.0;
    for (; i < n; i += 1)
      A[i] = 0.0;
"""

from __future__ import annotations

from dataclasses import replace

from . import ir
from .exprtext import CTYPE, access_to_c, expr_to_c
from .kinds import LoopKind
from .vector_plan import IF_ROOM, VectorISA, VectorPlan, isa_of, isa_of_meta, plan_vector_loop


def to_c(node: ir.Stmt, indent: int = 0, isa: VectorISA | None = None,
         temps: frozenset[str] | None = None, plan: VectorPlan | None = None,
         dtypes: dict | None = None) -> str:
    """C-like text of a statement tree; ``vector`` loops as generated for
    ``isa`` (default: the host), ``temps`` being the kernel's 0-d
    temporaries (default: every 0-d array stored to) and ``dtypes`` the
    arrays' element types (default: those of the values stored and loaded)."""
    ctx = (isa, temps, plan, dtypes)

    def sub(x: ir.Stmt) -> str:
        return to_c(x, indent, *ctx)

    pad = "  " * indent
    if isinstance(node, ir.Block):
        return "\n".join(sub(s) for s in node.stmts)
    if isinstance(node, ir.Store):
        target = access_to_c(node.array, node.index, plan, "scatter")
        value = expr_to_c(node.value, 0, plan)
        if node.atomic:
            op = "+=" if node.atomic == "add" else "-="
            return f"{pad}{target} {op} {value};  // atomic"
        return f"{pad}{target} = {value};"
    if isinstance(node, ir.For):
        if node.kind is LoopKind.VECTOR:
            return _vector_for(node, indent, isa, temps, dtypes)
        head = f"{pad}for ({node.var} = {expr_to_c(node.start)}; {node.var} < " \
               f"{expr_to_c(node.stop)}; {node.var} += {node.step})"
        if node.kind is not LoopKind.SERIAL:
            head = f"{pad}// {node.kind}\n{head}"
        return head + _body(node.body, indent, *ctx)
    if isinstance(node, ir.Extern):
        args = [("&" if ref else "") + expr_to_c(a) for a, ref in zip(node.args, node.byref)]
        return f"{pad}{node.name}({', '.join(args)});"
    if isinstance(node, ir.If):
        s = f"{pad}if ({expr_to_c(node.cond, 0, plan)})" + _body(node.then, indent, *ctx)
        if node.else_ is not None:
            s += f"\n{pad}else" + _body(node.else_, indent, *ctx)
        return s
    raise AssertionError(f"unknown statement {node!r}")


def _vector_for(node: ir.For, indent: int, isa: VectorISA | None,
                temps: frozenset[str] | None, dtypes: dict | None) -> str:
    """A ``vector`` loop as ``polyop.codegen.vector`` emits it: its pieces
    (``VectorPlan.pieces``), vector loops then the scalar rest."""
    pad = "  " * indent
    if temps is None:
        temps = frozenset(s.array for s in ir.walk(node) if isinstance(s, ir.Store)
                          and not s.index)
    plan = plan_vector_loop(node, isa_of(isa), temps, dtypes)
    v, step, stop = node.var, node.step, expr_to_c(node.stop)
    if not plan.vectorised:
        return f"{pad}// vector: not vectorised, {plan.reason}\n{pad}for ({v} = " \
               f"{expr_to_c(node.start)}; {v} < {stop}; {v} += {step})" + \
               _body(node.body, indent, isa, temps, None, dtypes)
    parts, done = [], 0  # done: iterations before this piece, when constant
    for width, count in plan.pieces():
        init = f"{v} = {expr_to_c(node.start)}" if not parts else ""
        if count is None and width == 1:
            last = f"{v} < {stop}"
        elif count is None or count == IF_ROOM:
            last = f"{v} + {width} <= {stop}" if step == 1 else \
                f"{v} + {(width - 1) * step} < {stop}"
        else:
            done += width * count
            last = f"{v} < {stop}" if done == plan.trip else \
                f"{v} < {expr_to_c(_plus(node.start, done * step))}"
        head = f"{pad}for ({init}; {last}; {v} += {width * step})"
        if width == 1:
            parts.append(head + _body(node.body, indent, isa, temps, None, dtypes))
        else:
            once = " (at most once)" if count == IF_ROOM else ""
            parts.append(f"{pad}// vector x{width}{once}\n" + head +
                         _body(node.body, indent, isa, temps, replace(plan, lanes=width), dtypes))
    return "\n".join(parts)


def _plus(e: ir.Expr, k: int) -> ir.Expr:
    """``e + k``, folded when ``e`` is a constant."""
    if isinstance(e, ir.Const):
        return ir.Const(e.value + k, e.dtype)
    return ir.Bin("add", e, ir.Const(k), e.dtype)


def _body(node: ir.Stmt, indent: int, *ctx) -> str:
    pad = "  " * indent
    # a vector loop may print as two loops (whole vectors, then the rest)
    if isinstance(node, ir.Block) and len(node.stmts) != 1 or \
            isinstance(node, ir.For) and node.kind is LoopKind.VECTOR:
        return " {\n" + to_c(node, indent + 1, *ctx) + f"\n{pad}}}"
    return "\n" + to_c(node, indent + 1, *ctx)


def function_to_c(fn: ir.Function) -> str:
    """A whole kernel: signature, temporaries and the loop nest."""
    params = []
    for p in fn.params:
        t = CTYPE[p.dtype.name]
        if p.kind == "array":
            params.append(f"{t} {p.name}" + "".join(f"[{expr_to_c(d)}]" for d in p.shape))
        else:
            params.append(f"{t} {p.name}")
    # sizes for which an access would leave its array (polyop.bounds), checked per call
    lines = [f"// requires: {text}" for text in fn.meta.get("requires", ())]
    lines.append(f"void {fn.name}({', '.join(params)}) {{")
    shapes = fn.meta.get("temp_shapes", {})  # local arrays; other temporaries are 0-d
    lines += [f"  {CTYPE[t.name]} {name}" + "".join(f"[{n}]" for n in shapes.get(name, ()))
              + ";" for name, t in fn.temps]
    temps = frozenset(name for name, _ in fn.temps if name not in shapes)
    dtypes = {p.name: p.dtype for p in fn.params} | dict(fn.temps)
    lines.append(to_c(fn.body, 1, isa_of_meta(fn.meta), temps, None, dtypes))
    lines.append("}")
    return "\n".join(lines)


ir.set_printer(to_c, function_to_c)  # str() of loop IR is its C-like text
