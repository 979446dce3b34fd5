"""Schedules: isl schedule trees over a ``Program``'s statements, and the
legality-checked primitives that transform them."""

from .legality import Violation
from .schedule import Loop, Schedule
from .textual import textual_schedule

__all__ = ["Loop", "Schedule", "Violation", "textual_schedule"]
