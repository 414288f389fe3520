from __future__ import annotations

import pytest

from pysozu.reactor.timer import POLL_INTERVAL, UNARMED, PolledTimeout, Timeout, Timers


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def advance(timers: Timers, clock: FakeClock, dt: float) -> int:
    clock.t += dt
    timers.update_now()
    return timers.run_due()


def test_timers_fire_in_deadline_order_and_cancel():
    clock = FakeClock()
    timers = Timers(clock)
    fired: list[str] = []
    timers.schedule(3, lambda: fired.append("c"))
    timers.schedule(1, lambda: fired.append("a"))
    b = timers.schedule(2, lambda: fired.append("b"))
    timers.schedule(1, lambda: fired.append("a2"))  # same deadline: insertion order
    assert timers.next_deadline() == 1001.0
    timers.cancel(b)
    timers.cancel(b)  # idempotent
    assert advance(timers, clock, 0.5) == 0
    assert advance(timers, clock, 0.5) == 2
    assert fired == ["a", "a2"]
    assert advance(timers, clock, 5) == 1
    assert fired == ["a", "a2", "c"]
    assert len(timers) == 0 and timers.next_deadline() is None


def test_timeout_fires_after_idle_duration():
    clock = FakeClock()
    timers = Timers(clock)
    fired: list[float] = []
    timeout = Timeout(timers, 10, lambda: fired.append(timers.now))
    timeout.set()
    advance(timers, clock, 9.9)
    assert not fired
    advance(timers, clock, 0.1)
    assert fired == [1010.0]
    assert not timeout.armed


def test_timeout_touch_postpones_without_resorting_each_time():
    clock = FakeClock()
    timers = Timers(clock)
    fired: list[float] = []
    timeout = Timeout(timers, 10, lambda: fired.append(timers.now))
    timeout.set()
    for _ in range(5):  # activity every 4 s keeps it alive
        advance(timers, clock, 4)
        timeout.touch()
        assert len(timers) == 1  # touch never adds entries
    assert not fired
    advance(timers, clock, 9.99)
    assert not fired
    advance(timers, clock, 0.01)
    assert fired == [clock.t]


def test_timeout_cancel_and_rearm_with_new_duration():
    clock = FakeClock()
    timers = Timers(clock)
    fired: list[int] = []
    timeout = Timeout(timers, 10, lambda: fired.append(1))
    timeout.set()
    timeout.cancel()
    advance(timers, clock, 20)
    assert not fired
    timeout.set(2)
    advance(timers, clock, 2)
    assert fired == [1]


def test_cancelled_entries_do_not_accumulate():
    # a busy proxy arms and cancels timers for every connection: the dead entries must not
    # pile up in the heap until their (distant) deadlines
    clock = FakeClock()
    timers = Timers(clock)
    keep = timers.schedule(100, lambda: None)
    for _ in range(20_000):
        timers.cancel(timers.schedule(60, lambda: None))
    assert len(timers) == 1
    assert len(timers._heap) < 3_000
    assert timers.next_deadline() == keep.deadline


def test_cancelled_entry_at_the_top_is_skipped():
    clock = FakeClock()
    timers = Timers(clock)
    fired: list[str] = []
    first = timers.schedule(1, lambda: fired.append("first"))
    timers.schedule(2, lambda: fired.append("second"))
    timers.cancel(first)
    assert timers.next_deadline() == 1002.0
    assert advance(timers, clock, 5) == 1
    assert fired == ["second"]


def test_timeout_close_releases_its_callback():
    # the owner's bound method in ``callback`` would keep a reference cycle alive for the
    # garbage collector; close() cuts it
    import gc
    import weakref

    clock = FakeClock()
    timers = Timers(clock)

    class Owner:
        def __init__(self) -> None:
            self.timeout = Timeout(timers, 10, self.fire)

        def fire(self) -> None:
            raise AssertionError("closed timeouts never fire")

    owner = Owner()
    owner.timeout.set()
    ref = weakref.ref(owner)
    owner.timeout.close()
    gc.disable()
    try:
        del owner
        assert ref() is None  # freed by reference counting alone
    finally:
        gc.enable()
    assert advance(timers, clock, 20) == 0


def test_unarmed_timeout_is_inert_and_refuses_to_arm():
    timers = Timers(clock=lambda: 100.0)
    UNARMED.touch()
    UNARMED.last = 5.0  # an owner's touch() written as an attribute store: harmless
    UNARMED.cancel()
    UNARMED.close()
    assert not UNARMED.armed and len(timers) == 0
    with pytest.raises(RuntimeError):
        UNARMED.set()
    with pytest.raises(RuntimeError):
        UNARMED.reuse(1.0, lambda: None)
    assert not UNARMED.armed


# -- polled timeouts (one heap entry for a group) -----------------------------------------------


def test_polled_timeouts_share_one_heap_entry_and_fire_within_the_interval():
    clock = FakeClock()
    timers = Timers(clock)
    fired: list[str] = []
    group = timers.polled
    members = [PolledTimeout(group, 3, lambda n=n: fired.append(f"t{n}")) for n in range(50)]
    for member in members:
        member.set()
    assert len(timers) == 1  # the group's tick only
    assert all(m.armed for m in members)
    for member in members[10:]:
        member.cancel()  # what a finished stream does: no dead heap entry left behind
    assert len(timers) == 1 and not members[10].armed
    advance(timers, clock, 2.9)
    assert fired == []
    advance(timers, clock, 0.1)
    advance(timers, clock, POLL_INTERVAL)  # due at 3 s: fired by the next tick at the latest
    assert sorted(fired) == sorted(f"t{n}" for n in range(10))
    assert not any(m.armed for m in members)
    assert len(timers) == 0  # an empty group keeps no tick


def test_polled_timeout_touch_postpones_and_short_durations_are_checked_sooner():
    clock = FakeClock()
    timers = Timers(clock)
    fired: list[float] = []
    slow = PolledTimeout(timers.polled, 5, lambda: fired.append(-timers.now))
    slow.set()
    for _ in range(4):  # activity every 2 s keeps it alive
        advance(timers, clock, 2)
        slow.touch()
    assert fired == []
    quick = PolledTimeout(timers.polled, 0.25, lambda: fired.append(timers.now))
    quick.set()  # shorter than the interval: the tick comes sooner
    advance(timers, clock, 0.25)
    assert fired == [clock.t]
    advance(timers, clock, 5)
    assert fired[1:] == [-clock.t] and not slow.armed


def test_polled_timeout_close_and_a_failing_member():
    clock = FakeClock()
    timers = Timers(clock)
    fired: list[str] = []

    def boom() -> None:
        raise RuntimeError("member callback fails")

    bad = PolledTimeout(timers.polled, 1, boom)
    good = PolledTimeout(timers.polled, 1, lambda: fired.append("good"))
    closed = PolledTimeout(timers.polled, 1, lambda: fired.append("closed"))
    for member in (bad, good, closed):
        member.set()
    closed.close()
    advance(timers, clock, 1)
    assert fired == ["good"]  # the failure is logged; the other members still fire
    closed.set(2)  # re-armed with a new duration after a close: its callback is gone
    advance(timers, clock, 2)
    assert fired == ["good"]
