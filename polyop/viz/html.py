"""HTML that Jupyter shows for polyop's objects (their ``_repr_html_``).

A kernel shows its statements as a table (iteration domain, reads, writes,
source line) under its highlighted source; a ``Schedule`` the primitives
applied, its schedule tree as nested lists (loops by name and kind) and the
generated code; a refusal (``IllegalScheduleError``, ``Violation``) the broken
dependence and its instance pair as a table; a compiled kernel its loop nest,
with the LLVM IR and the assembly folded in ``<details>``. Every text from
the model goes through ``html.escape``; code is highlighted by pygments when it
is installed (inline styles, so no stylesheet is needed), else shown plain.

This module imports nothing else of polyop: the objects it shows import it
(lazily, in ``_repr_html_``), from every layer of the package, so it reads
them by their attributes. The code generated for a schedule comes from the
pipeline, which sits above the schedule: ``polyop.api`` hands its ``lower``
over with ``set_lowering``.

Example::

    >>> import polyop
    >>> @polyop.kernel
    ... def scale(n: int, x: "f64[n]"):
    ...     for i in range(n):
    ...         x[i] *= 2.0
    >>> page = kernel_html(scale, polyop.dependences)
    >>> "{ S0[i] : 0 &lt;= i &lt; n }" in page, "no dependences" in page
    (True, True)
"""

from __future__ import annotations

import html
import inspect
import textwrap
from collections.abc import Callable, Iterable

import islpy as isl

_STYLE = ("font-family: var(--jp-content-font-family, sans-serif); font-size: 13px; "
          "line-height: 1.4")
_TABLE = "border-collapse: collapse; margin: 4px 0; font-size: 12px"
_CELL = "border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top"
_PRE = ("background: #f7f7f7; padding: 6px; margin: 4px 0; overflow-x: auto; font-size: 12px; "
        "line-height: 1.3")
#: generated code longer than this is cut in the display (the object has all of it)
MAX_CODE_CHARS = 200_000

_lowering: Callable | None = None


def set_lowering(fn: Callable) -> None:
    """Register ``fn(schedule)``, the generated code of a schedule as an object
    that prints as C (``polyop.lower``), for ``schedule_html``."""
    global _lowering
    _lowering = fn


def code(text: str, language: str) -> str:
    """``text`` as a highlighted block (``language``: python, c, llvm, asm)."""
    if len(text) > MAX_CODE_CHARS:
        cut = len(text) - MAX_CODE_CHARS
        text = text[:MAX_CODE_CHARS] + f"\n… ({cut} more characters)"
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import CLexer, GasLexer, LlvmLexer, PythonLexer
    except ImportError:  # pygments is optional (polyop[viz])
        return f'<pre style="{_PRE}">{html.escape(text)}</pre>'
    lexer = {"python": PythonLexer, "c": CLexer, "llvm": LlvmLexer, "asm": GasLexer}[language]()
    body = highlight(text, lexer, HtmlFormatter(noclasses=True, nobackground=True))
    return f'<div style="{_PRE}">{body}</div>'


def table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    """A table of escaped text (``None`` shows as an empty cell)."""
    head = "".join(f'<th style="{_CELL}">{html.escape(str(h))}</th>' for h in header)
    body = "".join("<tr>" + "".join(f'<td style="{_CELL}">{_cell(c)}</td>' for c in row)
                   + "</tr>" for row in rows)
    return f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cell(value: object) -> str:
    if value is None:
        return ""
    return html.escape(str(value)).replace("\n", "<br>")


def _page(title: str, *parts: str) -> str:
    return f'<div style="{_STYLE}"><b>{html.escape(title)}</b>' + "".join(parts) + "</div>"


def _section(title: str, body: str, open_: bool = True) -> str:
    if open_:
        return f"<div><i>{html.escape(title)}</i>{body}</div>"
    return f"<details><summary>{html.escape(title)}</summary>{body}</details>"


def _set_text(s) -> str:
    """An isl set or map without its parameter prefix: ``{ S0[i] : 0 <= i < n }``."""
    text = str(s)
    return text.split("->", 1)[1].strip() if text.startswith("[") and "->" in text else text


def _distance(deltas) -> str:
    """A dependence's distances (``Map.deltas``): one vector as ``(1, -1)``
    where it is the same at every size, else the set without its tuple name
    (``[i, j] : ...``)."""
    fixed = deltas.project_out_all_params()
    if fixed.is_singleton():
        point = fixed.sample_point()
        values = [point.get_coordinate_val(isl.dim_type.set, k).to_python()
                  for k in range(fixed.dim(isl.dim_type.set))]
        return "(" + ", ".join(map(str, values)) + ")"
    return _set_text(deltas.reset_tuple_id()).strip("{} ")


def _error_of(e: BaseException) -> bool:
    return any(c.__name__ == "PolyopError" for c in type(e).__mro__)


# -- kernels -------------------------------------------------------------------------------
def kernel_html(kernel, dependences: Callable | None = None) -> str:
    """A kernel: its highlighted source, then a table of its statements
    (domain, reads, writes), its sizes' assumptions and its dependences
    (``dependences(kernel)``, when given); a kernel polyop cannot parse shows
    the error instead of the tables."""
    name = getattr(kernel, "__name__", "kernel")
    try:
        source = textwrap.dedent(inspect.getsource(kernel.py_func))
    except (OSError, TypeError):
        source = ""
    parts = [code(source, "python")] if source else []
    try:
        program = kernel.program
    except Exception as e:  # a kernel outside the language: show why, not a traceback
        if not _error_of(e):
            raise
        return _page(f"polyop kernel {name}", *parts, _section(
            f"not a polyop kernel: {type(e).__name__}",
            f'<pre style="{_PRE}">{html.escape(str(e))}</pre>'))
    parts.append(_section("statements", program_table(program)))
    if program.assumptions:
        parts.append(_section("assumptions", "<ul>" + "".join(
            f"<li><code>{html.escape(a)}</code></li>" for a in program.assumptions) + "</ul>"))
    if dependences is not None:
        parts.append(_section("dependences", dependence_table(dependences(kernel))))
    return _page(f"polyop kernel {name}({', '.join(program.params)})", *parts)


def program_table(program) -> str:
    """One row per statement: name, line, source, domain, reads, writes."""
    rows = [(s.name, s.line, s.source, _set_text(s.domain),
             "\n".join(a.text for a in s.reads) or "–",
             "\n".join(a.text for a in s.writes) or "–") for s in program.statements]
    return table(("statement", "line", "source", "iteration domain", "reads", "writes"), rows)


def dependence_table(deps) -> str:
    """One row per (kind, array, statement pair) of ``polyop.dependences``: the
    distance (sink − source) where both are one statement, and the relation."""
    rows = []
    for kind, array, rel in deps.items():
        maps: list = []
        rel.foreach_map(maps.append)
        for m in maps:
            a, b = m.get_tuple_name(isl.dim_type.in_), m.get_tuple_name(isl.dim_type.out)
            distance = _distance(m.deltas()) if a == b else "–"
            rows.append((kind, array, f"{a} → {b}", distance, _set_text(m)))
    if not rows:
        return "<p>no dependences</p>"
    return table(("kind", "array", "statements", "distance", "instance pairs"), rows)


# -- schedules -----------------------------------------------------------------------------
def schedule_html(sch) -> str:
    """A ``Schedule``: the primitives applied, the schedule tree as nested
    lists, and the generated code (when ``set_lowering`` has been called)."""
    lines = str(sch).splitlines()
    trace = [t.strip() for t in lines[1:] if not t.strip().startswith("(")]
    applied = ("<ol>" + "".join(f"<li><code>{html.escape(t)}</code></li>" for t in trace)
               + "</ol>") if trace else "<p>none: the kernel's original order</p>"
    loops = sch.loop_info()
    parts = [_section("primitives applied", applied),
             _section("schedule tree", "<ul>" + tree_items(sch.tree.get_root(), loops)
                      + "</ul>")]
    if _lowering is not None:
        try:
            generated = str(_lowering(sch))
        except Exception as e:  # e.g. a schedule built with check=False that cannot lower
            if not _error_of(e):
                raise
            parts.append(_section("generated code", f"<p>{html.escape(str(e))}</p>"))
        else:
            parts.append(_section("generated code", code(generated, "c")))
    violations = sch.check() if not getattr(sch, "checking", True) else []
    if violations:
        parts.append(_section("violated dependences", violation_table(violations)))
    return _page(f"polyop schedule of {sch.program.name}", *parts)


def tree_items(node, loops: dict) -> str:
    """``<li>`` items for an isl schedule node and its children: loops by name
    and kind (``loops``: mark id → (name, kind)), statements by name."""
    kind = str(node.get_type()).rsplit(".", 1)[-1]
    kids = "".join(tree_items(node.child(k), loops) for k in range(node.n_children()))
    if kind == "mark":
        ident = node.mark_get_id().get_name()
        if ident in loops:  # a loop's mark: shown with its band
            return kids
        return f"<li>mark <code>{html.escape(ident)}</code><ul>{kids}</ul></li>"
    if kind == "band":
        parent = node.parent() if node.has_parent() else None
        mark = parent.mark_get_id().get_name() if parent is not None and \
            str(parent.get_type()).endswith("mark") else None
        name, loop_kind = loops.get(mark, (None, None))
        what = f"for <b>{html.escape(name)}</b>" if name else "band"
        if loop_kind is not None and str(getattr(loop_kind, "value", loop_kind)) != "serial":
            what += f" <i>({html.escape(str(getattr(loop_kind, 'value', loop_kind)))})</i>"
        value = html.escape(_band_text(node))
        return f"<li>{what} = <code>{value}</code><ul>{kids}</ul></li>"
    if kind == "filter":
        names = html.escape(", ".join(_statement_names(node.filter_get_filter())))
        if node.n_children() == 1 and str(node.child(0).get_type()).endswith("leaf"):
            return f"<li>run {names}</li>"
        return f"<li>{names}<ul>{kids}</ul></li>"
    if kind == "leaf":
        names = _statement_names(node.get_domain())
        return f"<li>run {html.escape(', '.join(names))}</li>"
    if kind == "domain":
        return kids
    label = {"sequence": "in sequence", "set": "in any order"}.get(kind, kind)
    return f"<li>{html.escape(label)}<ul>{kids}</ul></li>"


def _statement_names(us) -> list[str]:
    names: list[str] = []
    us.foreach_set(lambda s: names.append(s.get_tuple_name()))
    return sorted(dict.fromkeys(names))


def _band_text(node) -> str:
    """The band's value per statement, as isl prints it: ``S0: i + j``."""
    sched = node.band_get_partial_schedule()
    parts: list[str] = []
    for k in range(sched.dim(isl.dim_type.set)):  # one per band member
        upa = sched.get_at(k)
        upa.foreach_pw_aff(lambda pa: parts.append(_pw_aff_text(pa)))
    return "; ".join(parts)


def _pw_aff_text(pa) -> str:
    """``S0[i, j] -> [(i + j)]`` as ``S0: i + j``."""
    text = _set_text(pa).strip("{} ")
    head, _, value = text.partition("->")
    value = value.strip()
    if value.startswith("[(") and value.endswith(")]"):
        value = value[2:-2]
    return f"{head.split('[', 1)[0].strip()}: {value}"


# -- refusals ------------------------------------------------------------------------------
def violation_table(violations: Iterable) -> str:
    """One row per broken dependence: kind, array, element, source, sink,
    loop, sizes (``polyop.schedule.legality.Violation``)."""
    rows = [(v.kind, v.array, v.element, v.source, v.sink, v.loop or "–", v.sizes or "–")
            for v in violations]
    return table(("dependence", "array", "element", "source (runs first)", "sink", "loop",
                  "sizes"), rows)


def violation_html(v) -> str:
    """One ``Violation``: what it breaks, and the instance pair as a table."""
    return _page(f"broken {v.kind} dependence on {v.array}",
                 f"<p>{html.escape(v.describe('schedule'))}</p>", violation_table([v]))


def error_html(err) -> str:
    """An ``IllegalScheduleError``: its message and every violation."""
    return _page(type(err).__name__, f"<p>{html.escape(str(err))}</p>",
                 _section("violated dependences", violation_table(err.violations)))


# -- compiled kernels ----------------------------------------------------------------------
def compiled_html(ck) -> str:
    """A compiled kernel: target and compile time, the loop nest as C, the
    LLVM IR and the assembly folded."""
    name = getattr(getattr(ck, "program", None), "name", "kernel")
    facts = []
    target = getattr(ck, "target", None)
    if target is not None:
        facts.append(("target", str(target)))
    seconds = getattr(ck, "compile_seconds", None)
    if seconds is not None:
        facts.append(("LLVM time", f"{seconds * 1e3:.1f} ms"))
    parts = [table(("", ""), facts)] if facts else []
    function = getattr(ck, "function", None)
    if function is not None:
        parts.append(_section("loop nest", code(str(function), "c")))
    for title, attr, language in (("LLVM IR (optimised)", "llvm_ir", "llvm"),
                                  ("assembly", "asm", "asm")):
        try:
            text = getattr(ck, attr)
        except Exception as e:  # code for another machine may have no assembly here
            if not _error_of(e):
                raise
            continue
        if text:
            lines = text.count("\n") + 1
            parts.append(_section(f"{title}: {lines} lines", code(text, language),
                                  open_=False))
    return _page(f"compiled polyop kernel {name}", *parts)
