"""When to try a request again, and how long to wait first. Pure: the clients ask, then sleep themselves."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from time import time as _now


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (_now() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter for 429/502/503/504 and dropped connections,
    plus the wait for a loading model (503 with `estimated_time`), which is bounded by the call's timeout.

    >>> RetryPolicy(max_retries=2).delay(attempt=0, status=429, retry_after=1.5)
    1.5
    """

    max_retries: int = 2
    backoff: float = 0.25  # first wait; doubles each attempt
    max_backoff: float = 8.0
    jitter: float = 0.5  # up to +50% random
    max_retry_after: float = 60.0
    retry_statuses: frozenset[int] = frozenset({429, 502, 503, 504})
    loading_poll: float = 1.0  # v0.21 polled a loading model every second

    def delay(
        self,
        *,
        attempt: int,
        status: int | None = None,
        retry_after: float | None = None,
        remaining: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float | None:
        """Seconds to wait before retry number `attempt + 1`, or None to give up.

        `status` None means the connection failed; `remaining` is what is left of the call's timeout.
        """
        if attempt >= self.max_retries:
            return None
        if status is not None and status not in self.retry_statuses:
            return None
        if retry_after is not None:
            wait = min(retry_after, self.max_retry_after)
        elif status is None and attempt == 0:
            wait = 0.0  # most dropped connections are stale keep-alive sockets: reconnect at once
        else:
            wait = min(self.backoff * (2**attempt), self.max_backoff) * (1 + self.jitter * rand())
        if remaining is not None and wait > remaining:
            return None
        return wait

    def loading_delay(self, estimated_time: float | None, *, remaining: float | None) -> float | None:
        """Seconds to wait before asking a loading model again, or None when the timeout has run out."""
        wait = self.loading_poll
        if estimated_time is not None:
            wait = min(max(estimated_time, 0.05), self.loading_poll)
        if remaining is not None:
            if remaining <= 0:
                return None
            wait = min(wait, remaining)
        return wait
