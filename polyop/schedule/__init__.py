"""Schedules: isl schedule trees over a ``Program``'s statements, and the
legality-checked primitives that transform them."""

from .legality import Violation
from .schedule import Loop, Schedule
from .state import ScheduleState
from .textual import textual_schedule
from .trace import Instruction, trace_from_json, trace_to_json

__all__ = ["Instruction", "Loop", "Schedule", "ScheduleState", "Violation", "textual_schedule",
           "trace_from_json", "trace_to_json"]
