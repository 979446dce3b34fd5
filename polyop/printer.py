"""C-like text of loop IR, for humans (``print(polyop.lower(k))``).

``//`` and ``%`` keep Python's floor semantics; ``min``/``max`` are functions;
loop kinds other than serial are shown as a comment before the loop; local
arrays are declared with their shape (``float acc[6][16];``); a micro-kernel
call (``ir.Extern``) shows its by-address arguments as ``&A[i][j]``.

Example::

    >>> from polyop.ir import For, Store, Var, Const
    >>> from polyop.types import f64
    >>> print(to_c(For("i", Const(0), Var("n"), 1, Store("A", (Var("i"),), Const(0.0, f64)))))
    for (i = 0; i < n; i += 1)
      A[i] = 0.0;
"""

from __future__ import annotations

from . import ir

_INFIX = {"add": ("+", 4), "sub": ("-", 4), "mul": ("*", 5), "div": ("/", 5),
          "fdiv": ("//", 5), "mod": ("%", 5)}
_CMP = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
_CTYPE = {"f32": "float", "f64": "double", "i32": "int32_t", "i64": "int64_t", "bool": "bool"}


def expr_to_c(e: ir.Expr, prec: int = 0) -> str:
    """One expression; ``prec`` is the binding strength of the context."""
    if isinstance(e, ir.Const):
        return repr(e.value) if not isinstance(e.value, float) else _float(e.value)
    if isinstance(e, ir.Var):
        return e.name
    if isinstance(e, ir.Load):
        return e.array + "".join(f"[{expr_to_c(i)}]" for i in e.index)
    if isinstance(e, ir.Bin):
        if e.op in _INFIX:
            sym, p = _INFIX[e.op]
            s = f"{expr_to_c(e.a, p)} {sym} {expr_to_c(e.b, p + 1)}"
            return f"({s})" if p < prec else s
        return f"{e.op}({expr_to_c(e.a)}, {expr_to_c(e.b)})"
    if isinstance(e, ir.Cmp):
        s = f"{expr_to_c(e.a, 3)} {_CMP[e.op]} {expr_to_c(e.b, 3)}"
        return f"({s})" if prec > 2 else s
    if isinstance(e, ir.Logic):
        p = 2 if e.op == "and" else 1
        s = f"{expr_to_c(e.a, p)} {'&&' if e.op == 'and' else '||'} {expr_to_c(e.b, p + 1)}"
        return f"({s})" if p < prec else s
    if isinstance(e, ir.Not):
        return f"!{expr_to_c(e.a, 9)}"
    if isinstance(e, ir.Neg):
        return f"-{expr_to_c(e.a, 9)}"
    if isinstance(e, ir.Call):
        return f"{e.fn}({', '.join(expr_to_c(a) for a in e.args)})"
    if isinstance(e, ir.Select):
        s = f"{expr_to_c(e.cond, 1)} ? {expr_to_c(e.a, 1)} : {expr_to_c(e.b, 1)}"
        return f"({s})" if prec > 0 else s
    if isinstance(e, ir.Cast):
        return f"({_CTYPE[e.dtype.name]}){expr_to_c(e.a, 9)}"
    raise AssertionError(f"unknown expression {e!r}")


def _float(v: float) -> str:
    s = repr(v)
    return s if any(c in s for c in ".eni") else s + ".0"


def to_c(node: ir.Stmt, indent: int = 0) -> str:
    """C-like text of a statement tree."""
    pad = "  " * indent
    if isinstance(node, ir.Block):
        return "\n".join(to_c(s, indent) for s in node.stmts)
    if isinstance(node, ir.Store):
        target = node.array + "".join(f"[{expr_to_c(i)}]" for i in node.index)
        if node.atomic:
            op = "+=" if node.atomic == "add" else "-="
            return f"{pad}{target} {op} {expr_to_c(node.value)};  // atomic"
        return f"{pad}{target} = {expr_to_c(node.value)};"
    if isinstance(node, ir.For):
        head = f"{pad}for ({node.var} = {expr_to_c(node.start)}; {node.var} < " \
               f"{expr_to_c(node.stop)}; {node.var} += {node.step})"
        if node.kind != "serial":
            head = f"{pad}// {node.kind}\n{head}"
        return head + _body(node.body, indent)
    if isinstance(node, ir.Extern):
        args = [("&" if ref else "") + expr_to_c(a) for a, ref in zip(node.args, node.byref)]
        return f"{pad}{node.name}({', '.join(args)});"
    if isinstance(node, ir.If):
        s = f"{pad}if ({expr_to_c(node.cond)})" + _body(node.then, indent)
        if node.else_ is not None:
            s += f"\n{pad}else" + _body(node.else_, indent)
        return s
    raise AssertionError(f"unknown statement {node!r}")


def _body(node: ir.Stmt, indent: int) -> str:
    pad = "  " * indent
    if isinstance(node, ir.Block) and len(node.stmts) != 1:
        return " {\n" + to_c(node, indent + 1) + f"\n{pad}}}"
    return "\n" + to_c(node, indent + 1)


def function_to_c(fn: ir.Function) -> str:
    """A whole kernel: signature, temporaries and the loop nest."""
    params = []
    for p in fn.params:
        t = _CTYPE[p.dtype.name]
        if p.kind == "array":
            params.append(f"{t} {p.name}" + "".join(f"[{expr_to_c(d)}]" for d in p.shape))
        else:
            params.append(f"{t} {p.name}")
    # sizes for which an access would leave its array (polyop.bounds), checked per call
    lines = [f"// requires: {text}" for text in fn.meta.get("requires", ())]
    lines.append(f"void {fn.name}({', '.join(params)}) {{")
    shapes = fn.meta.get("temp_shapes", {})  # local arrays; other temporaries are 0-d
    lines += [f"  {_CTYPE[t.name]} {name}" + "".join(f"[{n}]" for n in shapes.get(name, ()))
              + ";" for name, t in fn.temps]
    lines.append(to_c(fn.body, 1))
    lines.append("}")
    return "\n".join(lines)
