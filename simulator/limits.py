"""The simulator's own rate limit: token buckets for requests and prompt tokens per minute.

A bucket holds one second of burst (at least one unit) and refills continuously, so a client that
honours Retry-After gets through at the configured rate and one that ignores it sees 429s.
"""

from __future__ import annotations

import math
import threading
import time


class TokenBucket:
    """Refilled at per_minute / 60 a second, capacity max(1, per_minute / 60)."""

    def __init__(self, per_minute: float, now: float | None = None) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic() if now is None else now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait(self, cost: float, now: float) -> float:
        """Seconds until `cost` can be taken; 0 when it can be taken now.

        A cost above the capacity only needs a full bucket, and leaves it in debt, so oversized
        requests still pass at the long-run rate instead of never.
        """
        self._refill(now)
        needed = min(cost, self.capacity)
        if self.tokens >= needed:
            return 0.0
        return (needed - self.tokens) / self.rate

    def take(self, cost: float) -> None:
        self.tokens -= cost


class RateLimiter:
    """Requests per minute and tokens per minute together: a request passes only if both allow it."""

    def __init__(self, rpm: float = 0, tpm: float = 0) -> None:
        self._lock = threading.Lock()
        self._requests = TokenBucket(rpm) if rpm > 0 else None
        self._tokens = TokenBucket(tpm) if tpm > 0 else None

    @property
    def active(self) -> bool:
        return self._requests is not None or self._tokens is not None

    def acquire(self, tokens: int) -> tuple[float, str]:
        """(0, "") when the request may go ahead, else (seconds to wait, which limit was hit)."""
        if not self.active:
            return 0.0, ""
        with self._lock:
            now = time.monotonic()
            waits: list[tuple[float, str]] = []
            if self._requests is not None:
                waits.append((self._requests.wait(1, now), "requests"))
            if self._tokens is not None:
                waits.append((self._tokens.wait(tokens, now), "tokens"))
            longest = max(waits)
            if longest[0] > 0:
                return longest
            if self._requests is not None:
                self._requests.take(1)
            if self._tokens is not None:
                self._tokens.take(tokens)
            return 0.0, ""


def retry_headers(seconds: float) -> dict[str, str]:
    """Retry-After in whole seconds (at least 1) and retry-after-ms, precise."""
    return {
        "Retry-After": str(max(1, math.ceil(seconds))),
        "retry-after-ms": str(max(1, math.ceil(seconds * 1000))),
    }
