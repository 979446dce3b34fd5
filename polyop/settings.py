"""Settings from the environment or from calls, checked in one place: integer
settings, and where polyop keeps its compiled files (``cache_root``).

A setting outside its accepted values is refused with a ``SettingError``
(a ``PolyopError`` and a ``ValueError``) that names the variable or the
parameter and the values it accepts, rather than being replaced silently by
a default: ``POLYOP_NUM_THREADS=0`` would otherwise run serially without a
word.

Example::

    >>> check_int("set_num_threads", 4, 1, 1024)
    4
    >>> check_int("set_num_threads", 0, 1, 1024)
    Traceback (most recent call last):
    ...
    polyop.errors.SettingError: set_num_threads: expected an int from 1 to 1024, got 0
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import SettingError


def _accepted(lowest: int, highest: int | None) -> str:
    return f"from {lowest} to {highest}" if highest is not None else f">= {lowest}"


def check_int(what: str, value, lowest: int, highest: int | None = None) -> int:
    """``value`` if it is an int (not a bool) in ``[lowest, highest]``, else a
    ``SettingError`` naming ``what`` and the accepted values."""
    if isinstance(value, bool) or not isinstance(value, int) \
            or value < lowest or (highest is not None and value > highest):
        raise SettingError(f"{what}: expected an int {_accepted(lowest, highest)}, "
                           f"got {value!r}", what)
    return value


def env_int(name: str, lowest: int, highest: int | None = None) -> int | None:
    """The environment variable ``name`` as an int in ``[lowest, highest]``;
    ``None`` when it is unset or empty; a ``SettingError`` naming it otherwise.

    Example::

        >>> os.environ["POLYOP_EXAMPLE"] = "2.5"
        >>> env_int("POLYOP_EXAMPLE", 1)
        Traceback (most recent call last):
        ...
        polyop.errors.SettingError: POLYOP_EXAMPLE='2.5': expected an integer >= 1
        >>> del os.environ["POLYOP_EXAMPLE"]
    """
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        n = int(text, 10)
    except ValueError:
        n = None
    if n is None or n < lowest or (highest is not None and n > highest):
        raise SettingError(f"{name}={text!r}: expected an integer "
                           f"{_accepted(lowest, highest)}", name)
    return n


def cache_root() -> Path:
    """Where polyop keeps compiled files (C micro-kernels, the argument-check
    extension): ``$POLYOP_CACHE_DIR``, else ``$XDG_CACHE_HOME/polyop`` or
    ``~/.cache/polyop``."""
    root = os.environ.get("POLYOP_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(xdg, "polyop")
    return Path(root)


def cache_subdir(name: str) -> Path:
    """The directory ``name`` under ``cache_root()``, created; where that
    cannot be written, ``polyop-<name>`` in the system's temporary directory."""
    directory = cache_root() / name
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        directory = Path(tempfile.gettempdir()) / f"polyop-{name}"
        directory.mkdir(parents=True, exist_ok=True)
    return directory
