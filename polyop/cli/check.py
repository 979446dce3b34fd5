"""``polyop check FILE.py:FUNC --schedule SCRIPT.py``: is a hand schedule legal?

Runs the script's ``schedule(sch)`` on a ``polyop.Schedule`` of the kernel, as
the user's own program would: every primitive is checked against the kernel's
exact dependences when it is applied, so the first illegal one stops the
script and is reported with every dependence it breaks (an instance pair for
each, sampled by isl). "legal" therefore means what ``polyop.build`` will
accept: the script runs to its end in the user's program too.

With ``--final`` the script runs on ``Schedule(k, check=False)`` instead and
every dependence the *final* schedule violates is reported, however many
primitives broke them (a later primitive may also repair an earlier one). A
script that returns a ``polyop.Schedule`` of its own has that one checked.

Exit status: 0 legal, 1 illegal, 2 a usage error, a missing file or function,
a script without ``schedule(sch)`` or failing otherwise (a ``ScheduleError``
such as an unknown loop included), or a kernel polyop cannot parse. ``--json``
prints one JSON object on stdout in every case, for a researcher's CI.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from typing import Any

from .common import (
    FAILED,
    OK,
    USAGE,
    UsageError,
    describe,
    load_kernel,
    load_schedule_function,
    primitives,
    run_schedule_script,
    script_line,
)

_EPILOG = """\
examples:
  polyop check kernels.py:gemm --schedule tile.py
  polyop check kernels.py:gemm --schedule tile.py --json > report.json
  polyop check kernels.py:gemm --schedule experiment.py --final

The JSON report: {"status": "legal" | "illegal" | "error", "exit_status",
"kernel", "schedule_script", "mode": "first" | "final", "primitives" (applied,
in order), "trace" (the same as data: polyop.Schedule.replay(
polyop.schedule.trace_from_json(json.dumps(trace)), kernel) rebuilds the
schedule), "failed_primitive" and "failed_at" (the script's line), "message",
"violations": [{"kind", "array", "element", "source", "sink", "loop",
"carried", "sizes", "reduction", "escapes", "description"}], "error": null or
{"type", "message", and "file", "line", "col" for a FrontendError}}."""

# the primitive at the head of an IllegalScheduleError's message (Violation.describe)
_PRIMITIVE = re.compile(r"(.+?)(?:: | would run )")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Declare ``polyop check``."""
    p = subparsers.add_parser(
        "check", help="check a schedule script's legality (exit 0 legal, 1 illegal, 2 error)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=describe(__doc__), epilog=_EPILOG)
    p.add_argument("kernel", metavar="FILE.py:FUNC",
                   help="a @polyop.kernel or plain function FUNC of the Python file FILE.py")
    p.add_argument("--schedule", metavar="SCRIPT.py", required=True,
                   help="a Python file defining schedule(sch)")
    p.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    p.add_argument("--final", action="store_true",
                   help="apply every primitive unchecked, then report all the dependences "
                        "the final schedule violates")
    return p


def _violation(v, primitive: str) -> dict[str, Any]:
    return {**dataclasses.asdict(v), "description": v.describe(primitive)}


def _trace(sch) -> dict[str, Any]:
    """The primitives applied, as replayable data (``polyop.schedule.trace``)."""
    from ..schedule import trace_to_json

    return json.loads(trace_to_json(sch.trace))


def _error(exc: BaseException) -> dict[str, Any]:
    from ..errors import FrontendError

    cause = getattr(exc, "cause", None) or exc
    out: dict[str, Any] = {"type": type(cause).__name__, "message": str(exc)}
    if isinstance(cause, FrontendError):
        out.update(file=cause.filename, line=cause.line, col=cause.col, reason=cause.reason)
    return out


def _check(args: argparse.Namespace, report: dict[str, Any]) -> int:
    from .. import IllegalScheduleError, Schedule

    k = load_kernel(args.kernel)
    fn = load_schedule_function(args.schedule)
    sch = Schedule(k, check=not args.final)
    try:
        sch = run_schedule_script(fn, args.schedule, sch)
    except IllegalScheduleError as exc:
        found = _PRIMITIVE.match(str(exc))
        what = found.group(1) if found else "schedule"
        report.update(status="illegal", primitives=primitives(sch), trace=_trace(sch),
                      failed_primitive=what,
                      failed_at=script_line(args.schedule, exc), message=str(exc),
                      violations=[_violation(v, what) for v in exc.violations])
        return FAILED
    report.update(primitives=primitives(sch), trace=_trace(sch))
    violations = sch.check() if not sch.checking else []
    if violations:
        report.update(status="illegal", message=f"the final schedule violates "
                      f"{len(violations)} dependence(s)",
                      violations=[_violation(v, "schedule") for v in violations])
        return FAILED
    report["status"] = "legal"
    return OK


def _print_text(report: dict[str, Any]) -> None:
    applied = ", ".join(report["primitives"]) or "none"
    if report["status"] == "legal":
        print(f"legal: {report['kernel']} with {report['schedule_script']} "
              f"(primitives: {applied})")
        return
    where = report.get("failed_at") or report["schedule_script"]
    print(f"illegal: {where}")
    print(f"  {report['message']}")
    print(f"primitives applied before it: {applied}" if report.get("failed_primitive")
          else f"primitives: {applied}")
    vs = report["violations"]
    print(f"violated dependences ({len(vs)}):")
    for v in vs:
        loop = f", loop {v['loop']}" if v["loop"] else ""
        sizes = f", with {v['sizes']}" if v["sizes"] else ""
        print(f"  {v['kind']} on {v['array']} ({v['element']}): {v['source']} -> "
              f"{v['sink']}{loop}{sizes}")


def run(args: argparse.Namespace) -> int:
    """Check the schedule; print the verdict (or the JSON report); return 0, 1 or 2."""
    from .. import __version__
    from ..errors import PolyopError

    report: dict[str, Any] = {
        "status": None, "exit_status": None, "kernel": args.kernel,
        "schedule_script": args.schedule, "mode": "final" if args.final else "first",
        "primitives": [], "trace": None, "failed_primitive": None, "failed_at": None,
        "message": None, "violations": [], "error": None, "polyop_version": __version__}
    try:
        status = _check(args, report)
    except (UsageError, PolyopError) as exc:
        if not args.json:
            raise  # main prints it as a usage error
        report.update(status="error", error=_error(exc), message=str(exc))
        status = USAGE
    report["exit_status"] = status
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        _print_text(report)
    return status
