"""Fixtures shared by the test modules."""

import pytest

from polyop.codegen.parallel import get_min_work, get_num_threads, set_min_work, set_num_threads


@pytest.fixture
def threads():
    """Run a body at a thread count with every region forking a team (no
    minimum work): ``threads(n)`` sets the count; both settings are restored."""
    before, work = get_num_threads(), get_min_work()
    set_min_work(0)

    def at(n: int) -> None:
        set_num_threads(n)

    yield at
    set_num_threads(before)
    set_min_work(work)


@pytest.fixture
def three_threads():
    """Parallel loops on 3 threads, even on small machines: real concurrency
    (the fuzzers run every example so)."""
    before = get_num_threads()
    set_num_threads(3)
    yield
    set_num_threads(before)
