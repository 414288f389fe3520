"""Exponential back-off policy: timings and down/up rules of Sōzu's lib/src/retry.rs."""

from __future__ import annotations

import random

import pytest

from pysozu.protocols.retry import DEFAULT_MAX_TRIES, ExponentialBackoffPolicy, RetryAction


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ScriptedRng(random.Random):
    """Records every randrange(lo, hi) and answers hi - 1 (the longest wait) or lo."""

    def __init__(self, longest: bool = True) -> None:
        super().__init__(0)
        self.calls: list[tuple[int, int]] = []
        self.longest = longest

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        assert stop is not None and step == 1
        self.calls.append((start, stop))
        return stop - 1 if self.longest else start


def test_default_max_tries_is_six() -> None:
    assert DEFAULT_MAX_TRIES == 6
    assert ExponentialBackoffPolicy().max_tries == 6


def test_fresh_policy_can_try_at_once() -> None:
    clock = FakeClock()
    policy = ExponentialBackoffPolicy(clock=clock)
    assert policy.can_try() is RetryAction.OKAY
    assert not policy.is_down()
    assert policy.current_tries == 0
    assert policy.remaining_wait() == 0.0


def test_first_failure_waits_exactly_one_second_without_drawing() -> None:
    clock = FakeClock()
    rng = ScriptedRng()
    policy = ExponentialBackoffPolicy(rng=rng, clock=clock)
    policy.fail()
    assert rng.calls == []  # max_secs == 1: no random draw
    assert policy.wait == 1
    assert policy.current_tries == 1
    assert policy.can_try() is RetryAction.WAIT
    clock.advance(0.999)
    assert policy.can_try() is RetryAction.WAIT
    assert policy.remaining_wait() == pytest.approx(0.001)
    clock.advance(0.001)
    # the window is over when elapsed >= wait
    assert policy.can_try() is RetryAction.OKAY


def test_failures_inside_the_window_are_not_counted() -> None:
    clock = FakeClock()
    rng = ScriptedRng()
    policy = ExponentialBackoffPolicy(rng=rng, clock=clock)
    policy.fail()
    last_try = policy.last_try
    for _ in range(20):
        clock.advance(0.04)
        policy.fail()
    assert policy.current_tries == 1
    assert policy.wait == 1
    assert policy.last_try == last_try
    assert rng.calls == []
    # Sōzu's max_fails test: many failures in a burst leave the policy waiting, not down
    assert policy.can_try() is RetryAction.WAIT
    assert not policy.is_down()


def test_window_ranges_double_and_down_after_six_counted_failures() -> None:
    clock = FakeClock()
    rng = ScriptedRng(longest=True)
    policy = ExponentialBackoffPolicy(rng=rng, clock=clock)
    waits = []
    for counted in range(1, 7):
        assert policy.can_try() is RetryAction.OKAY
        assert not policy.is_down()
        policy.fail()
        assert policy.current_tries == counted
        waits.append(policy.wait)
        clock.advance(policy.wait - 0.5)
        assert policy.can_try() is RetryAction.WAIT
        clock.advance(0.5)
    # tries before the increment: 0 -> 1 s; 1 -> [1, 2); 2 -> [1, 4); ... 5 -> [1, 32)
    assert rng.calls == [(1, 2), (1, 4), (1, 8), (1, 16), (1, 32)]
    assert waits == [1, 1, 3, 7, 15, 31]
    assert policy.is_down()


def test_shortest_draws_are_one_second() -> None:
    clock = FakeClock()
    rng = ScriptedRng(longest=False)
    policy = ExponentialBackoffPolicy(rng=rng, clock=clock)
    for _ in range(6):
        policy.fail()
        assert policy.wait == 1
        clock.advance(1)
    assert policy.is_down()


def test_down_policy_still_lets_a_probe_through_after_its_window() -> None:
    clock = FakeClock()
    rng = ScriptedRng()
    policy = ExponentialBackoffPolicy(rng=rng, clock=clock)
    for _ in range(6):
        policy.fail()
        clock.advance(policy.wait)
    assert policy.is_down()
    # Sōzu's exponential policy overrides the "None when exhausted" default: OKAY again
    assert policy.can_try() is RetryAction.OKAY
    rng.calls.clear()
    policy.fail()
    # tries saturate at max_tries; the window is drawn in [1, 2**6)
    assert policy.current_tries == 6
    assert rng.calls == [(1, 64)]
    assert policy.wait == 63
    assert policy.can_try() is RetryAction.WAIT
    clock.advance(63)
    assert policy.can_try() is RetryAction.OKAY
    assert policy.is_down()


def test_succeed_resets_everything() -> None:
    clock = FakeClock()
    rng = ScriptedRng()
    policy = ExponentialBackoffPolicy(rng=rng, clock=clock)
    for _ in range(3):
        policy.fail()
        clock.advance(policy.wait)
    policy.fail()
    assert policy.can_try() is RetryAction.WAIT
    policy.succeed()
    assert policy.current_tries == 0
    assert policy.wait == 0
    assert policy.last_try == clock.now
    assert policy.can_try() is RetryAction.OKAY
    # the next failure starts from the 1 s window again
    rng.calls.clear()
    policy.fail()
    assert policy.wait == 1
    assert rng.calls == []


def test_recover_from_fail_like_sozu() -> None:
    clock = FakeClock()
    policy = ExponentialBackoffPolicy(10, rng=random.Random(7), clock=clock)
    for _ in range(9):
        policy.fail()
        clock.advance(policy.wait)
    assert policy.current_tries == 9
    policy.succeed()
    policy.fail()
    policy.fail()
    policy.fail()
    assert policy.current_tries == 1
    assert policy.can_try() is RetryAction.WAIT


@pytest.mark.parametrize("seed", range(40))
def test_seeded_waits_stay_in_range(seed: int) -> None:
    clock = FakeClock()
    policy = ExponentialBackoffPolicy(8, rng=random.Random(seed), clock=clock)
    for tries_before in range(12):
        policy.fail()
        upper = max(1, 2 ** min(tries_before, 8))
        assert 1 <= policy.wait <= max(1, upper - 1)
        clock.advance(policy.wait)


def test_seeded_policy_is_deterministic() -> None:
    def run(seed: int) -> list[int]:
        clock = FakeClock()
        policy = ExponentialBackoffPolicy(rng=random.Random(seed), clock=clock)
        out = []
        for _ in range(8):
            policy.fail()
            out.append(policy.wait)
            clock.advance(policy.wait)
        return out

    assert run(3) == run(3)


def test_max_tries_one_goes_down_on_first_failure() -> None:
    clock = FakeClock()
    policy = ExponentialBackoffPolicy(1, clock=clock)
    policy.fail()
    assert policy.is_down()
    assert policy.wait == 1


def test_shift_saturates_like_checked_shl() -> None:
    clock = FakeClock()
    rng = ScriptedRng()
    policy = ExponentialBackoffPolicy(100, rng=rng, clock=clock)
    policy.current_tries = 64
    policy.fail()
    assert rng.calls == [(1, 2**64 - 1)]
    assert policy.current_tries == 65


def test_negative_max_tries_rejected() -> None:
    with pytest.raises(ValueError):
        ExponentialBackoffPolicy(-1)
