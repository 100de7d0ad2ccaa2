"""The token bucket behind local mode's 429s: API Gateway's rate and burst, on an injected clock."""

from __future__ import annotations

import threading

import pytest

from lambda_streaming.throttling import TokenBucket


class FakeClock:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_a_full_bucket_lets_a_burst_through_then_refuses() -> None:
    bucket = TokenBucket(rate_per_second=10, burst=5, clock=FakeClock())
    assert [bucket.try_acquire() for _ in range(6)] == [True] * 5 + [False]


def test_tokens_come_back_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_second=10, burst=5, clock=clock)
    for _ in range(5):
        bucket.try_acquire()
    clock.advance(0.05)  # half a token
    assert bucket.try_acquire() is False
    clock.advance(0.05)  # the other half
    assert bucket.try_acquire() is True
    assert bucket.try_acquire() is False


def test_the_bucket_never_holds_more_than_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_second=100, burst=3, clock=clock)
    clock.advance(3600)
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]


def test_a_steady_rate_within_the_limit_is_never_refused() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_second=2, burst=1, clock=clock)
    results = []
    for _ in range(20):
        results.append(bucket.try_acquire())
        clock.advance(0.5)
    assert all(results)


def test_a_fractional_rate_allows_one_request_per_interval() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_second=0.5, burst=1, clock=clock)
    assert bucket.try_acquire() is True
    clock.advance(1.9)
    assert bucket.try_acquire() is False
    clock.advance(0.1)
    assert bucket.try_acquire() is True


def test_a_clock_that_steps_back_refills_nothing() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_second=1, burst=1, clock=clock)
    assert bucket.try_acquire() is True
    clock.advance(-10)
    assert bucket.try_acquire() is False
    clock.advance(1)  # back where it was: still less than one token since the last request
    assert bucket.try_acquire() is False


def test_concurrent_requests_take_exactly_the_burst() -> None:
    bucket = TokenBucket(rate_per_second=0.001, burst=50, clock=FakeClock())
    granted: list[bool] = []
    lock = threading.Lock()

    def request() -> None:
        for _ in range(20):
            result = bucket.try_acquire()
            with lock:
                granted.append(result)

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert granted.count(True) == 50


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0), (float("nan"), 1)])
def test_limits_that_would_refuse_everything_are_rejected(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate_per_second=rate, burst=burst)
