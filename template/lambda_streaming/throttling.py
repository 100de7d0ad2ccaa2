"""Local mode's stand-in for API Gateway stage throttling: a token bucket, with no I/O.

API Gateway throttles a stage with a token bucket: it holds at most `burst` tokens, starts full,
and refills at `rate` tokens per second; each request takes one token, and a request that finds the
bucket empty gets 429 ``{"message":"Too Many Requests"}``. It counts requests, not stream time: a
stream that lasts minutes took one token when it started.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Refills are sums of float products: 0.05 s at 10/s twice may add up to 0.9999999999999 tokens.
_ROUNDING = 1e-9


class TokenBucket:
    """`try_acquire()` is True while the request rate stays within `rate_per_second` and `burst`."""

    def __init__(
        self,
        rate_per_second: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not rate_per_second > 0:
            raise ValueError(f"rate_per_second must be more than 0, got {rate_per_second!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        self.rate_per_second = float(rate_per_second)
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)  # API Gateway starts with a full bucket
        self._updated = clock()
        self._lock = threading.Lock()  # the local server answers requests on several threads

    def try_acquire(self) -> bool:
        """Take one token for a request: False means answer 429 and do not invoke the function."""
        with self._lock:
            now = max(self._clock(), self._updated)  # a clock that steps back refills nothing
            elapsed = now - self._updated
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate_per_second)
            self._updated = now
            if self._tokens >= 1.0 - _ROUNDING:
                self._tokens -= 1.0
                return True
            return False
