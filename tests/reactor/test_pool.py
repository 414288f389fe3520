from __future__ import annotations

import pytest

from pysozu.reactor.pool import BufferPool


def test_pool_bounds_buffers_and_reuses_them():
    pool = BufferPool(max_buffers=3, buffer_size=128, min_buffers=1)
    bufs = [pool.checkout() for _ in range(3)]
    assert all(b is not None and len(b) == 128 for b in bufs)
    assert pool.in_use == 3 and pool.available == 0
    assert pool.checkout() is None  # bounded: memory never exceeds max × size
    pool.checkin(bufs[0])
    again = pool.checkout()
    assert again is bufs[0]  # reused, not reallocated
    assert pool.created == 3


def test_pool_checkin_none_is_harmless():
    pool = BufferPool(2, 16)
    pool.checkin(None)
    assert pool.in_use == 0


def test_pool_rejects_bad_sizes():
    with pytest.raises(ValueError):
        BufferPool(0, 16)
    with pytest.raises(ValueError):
        BufferPool(1, 0)


def test_pool_keeps_a_bounded_free_list():
    pool = BufferPool(max_buffers=100, buffer_size=64, min_buffers=2, max_free=3)
    bufs = [pool.checkout() for _ in range(10)]
    for b in bufs:
        pool.checkin(b)
    assert pool.in_use == 0
    assert len(pool._free) == 3  # the burst's surplus was released
    assert pool.created == 3
    assert [pool.checkout() for _ in range(100)].count(None) == 0  # still up to max_buffers
    assert pool.checkout() is None
