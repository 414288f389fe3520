from __future__ import annotations

from pysozu.reactor.timer import Timeout, Timers


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
