"""Schedules: isl schedule trees over a ``Program``'s statements."""

from .textual import textual_schedule

__all__ = ["textual_schedule"]
