"""One rate limit shared by every worker on every machine, for requests and tokens per minute.

GCRA with reservation: each key keeps a theoretical arrival time (tat). A caller reserves the
slot ``max(tat, now)``, pushes tat forward by ``cost * 60 / limit`` and sleeps until its slot.
Calls are thus spaced evenly, without bursts, so an endpoint that enforces the same limit with a
short token bucket does not answer 429 in steady state, and enough concurrent callers reach the
limit exactly. The state lives in Redis (one Lua script, the server's clock) or in the database
(row locks; PostgreSQL's clock), so that machines with skewed clocks still agree.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, NamedTuple

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import F, FloatField, Func, Value
from django.db.models.functions import Greatest

from feedback.drafting.models import RateLimitBucket

if TYPE_CHECKING:
    import redis
    from redis.commands.core import Script

__all__ = ["RateLimitWait", "acquire", "backend_name", "refund", "reset"]

REDIS_PREFIX = "ratelimit:"
"""Namespaces the Redis keys: the limiter usually shares its Redis database with the broker."""

_PG_CLOCK = "EXTRACT(EPOCH FROM clock_timestamp())::double precision"


class RateLimitWait(Exception):
    """The slot is further away than max_wait: nothing was reserved; try again after `seconds`."""

    seconds: float

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"rate limited: the next slot is {seconds:.3f} s away")


class Reservation(NamedTuple):
    """A reserved slot: how long to wait for it, and when it is (seconds since the epoch, the
    storage's clock)."""

    wait: float
    slot: float


def backend_name() -> str:
    """Where the shared state lives: "redis" or "database"."""
    backend = settings.RATE_LIMIT_BACKEND
    if backend == "auto":
        return "redis" if settings.RATE_LIMIT_REDIS_URL else "database"
    if backend == "redis" and not settings.RATE_LIMIT_REDIS_URL:
        raise ImproperlyConfigured("RATE_LIMIT_BACKEND is 'redis' but RATE_LIMIT_REDIS_URL is empty")
    if backend not in ("redis", "database"):
        raise ImproperlyConfigured(f"RATE_LIMIT_BACKEND must be auto, redis or database, not {backend!r}")
    return str(backend)


def acquire(
    key: str,
    *,
    tokens: int = 0,
    requests_per_minute: int | None = None,
    tokens_per_minute: int | None = None,
    max_wait: float | None = None,
) -> float:
    """Reserve one request and `tokens` tokens under the global limit for `key`; sleep until the slot;
    return the seconds slept. Limits default to the settings; 0 means no limit (returns 0.0 at once,
    touching no storage). Raises RateLimitWait when the slot is more than max_wait away.

    Call it outside any transaction: on the database backend the row locks would otherwise be
    held until the caller's transaction ends."""
    wait = _reserve(
        key,
        tokens=tokens,
        requests_per_minute=requests_per_minute,
        tokens_per_minute=tokens_per_minute,
        max_wait=max_wait,
    ).wait
    if wait > 0:
        time.sleep(wait)
    return wait


def refund(key: str, *, tokens: int, tokens_per_minute: int | None = None) -> None:
    """Give back tokens reserved but not used (the estimate exceeded the actual usage):
    move the tokens key's tat back by tokens*T, never before now."""
    tpm = settings.LLM_TOKENS_PER_MINUTE if tokens_per_minute is None else tokens_per_minute
    if tpm <= 0 or tokens <= 0:
        return
    seconds = tokens * 60.0 / tpm
    if backend_name() == "redis":
        _redis()[2](keys=[REDIS_PREFIX + key + ":tpm"], args=[repr(seconds * 1e6)])
        return
    now = _PostgresClock() if connection.vendor == "postgresql" else Value(time.time())
    # One UPDATE, atomic on its own: no lock to take, and no row to create when nothing was reserved.
    RateLimitBucket.objects.filter(key=key + ":tpm").update(tat=Greatest(F("tat") - Value(seconds), now))


def reset(key: str) -> None:
    """Forget the state of both keys (for tests and benchmarks)."""
    if backend_name() == "redis":
        _redis()[0].delete(REDIS_PREFIX + key + ":rpm", REDIS_PREFIX + key + ":tpm")
    else:
        RateLimitBucket.objects.filter(key__in=[key + ":rpm", key + ":tpm"]).delete()


def _reserve(
    key: str,
    *,
    tokens: int = 0,
    requests_per_minute: int | None = None,
    tokens_per_minute: int | None = None,
    max_wait: float | None = None,
) -> Reservation:
    """Reserve the slot without sleeping: the wait and the slot, for acquire and for tests.

    Both keys share one slot, the later of the two, because that is when the request is sent;
    each tat then moves on from it. A request of no tokens reserves nothing on the tokens key."""
    if tokens < 0:
        raise ValueError(f"tokens must not be negative, got {tokens}")
    rpm = settings.LLM_REQUESTS_PER_MINUTE if requests_per_minute is None else requests_per_minute
    tpm = settings.LLM_TOKENS_PER_MINUTE if tokens_per_minute is None else tokens_per_minute
    limit = settings.RATE_LIMIT_MAX_WAIT if max_wait is None else max_wait
    costs: dict[str, float] = {}  # key -> seconds its tat moves on
    if rpm > 0:
        costs[key + ":rpm"] = 60.0 / rpm
    if tpm > 0 and tokens > 0:
        costs[key + ":tpm"] = tokens * 60.0 / tpm
    if not costs:
        return Reservation(0.0, 0.0)
    if backend_name() == "redis":
        return _reserve_redis(costs, limit)
    return _reserve_database(costs, limit)


# Redis ------------------------------------------------------------------------------------------

# Times in microseconds (exact in a Lua double). KEYS: the limited keys; ARGV[1]: max wait;
# ARGV[1 + i]: how far KEYS[i]'s tat moves. Returns {reserved (1/0), wait, slot}.
_RESERVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slot = now
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or 0)
  if tat > slot then slot = tat end
end
local wait = slot - now
if wait > tonumber(ARGV[1]) then
  return {0, math.ceil(wait), math.floor(slot)}
end
for i = 1, #KEYS do
  local tat = slot + tonumber(ARGV[i + 1])
  redis.call('SET', KEYS[i], string.format('%.3f', tat), 'PX', math.max(math.ceil((tat - now) / 1000), 60000))
end
return {1, math.ceil(wait), math.floor(slot)}
"""

# KEYS[1]: the tokens key; ARGV[1]: how far to move its tat back. Never before now.
_REFUND_LUA = """
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
tat = math.max(tat - tonumber(ARGV[1]), now)
redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.max(math.ceil((tat - now) / 1000), 60000))
return 1
"""

_redis_cache: dict[str, tuple[redis.Redis, Script, Script]] = {}
_redis_lock = threading.Lock()


def _redis() -> tuple[redis.Redis, Script, Script]:
    """The client and the two scripts for the configured URL, made once per process: the scripts
    then run by their SHA, and the connection pool is reused."""
    url = settings.RATE_LIMIT_REDIS_URL
    cached = _redis_cache.get(url)
    if cached is None:
        import redis

        with _redis_lock:
            cached = _redis_cache.get(url)
            if cached is None:
                client = redis.Redis.from_url(url)
                cached = (client, client.register_script(_RESERVE_LUA), client.register_script(_REFUND_LUA))
                _redis_cache[url] = cached
    return cached


def _reserve_redis(costs: dict[str, float], max_wait: float) -> Reservation:
    keys = [REDIS_PREFIX + k for k in costs]
    args = [repr(max_wait * 1e6), *(repr(c * 1e6) for c in costs.values())]
    reserved, wait_us, slot_us = _redis()[1](keys=keys, args=args)
    if not reserved:
        raise RateLimitWait(int(wait_us) / 1e6)
    return Reservation(int(wait_us) / 1e6, int(slot_us) / 1e6)


# Database ---------------------------------------------------------------------------------------


def _reserve_database(costs: dict[str, float], max_wait: float) -> Reservation:
    keys = sorted(costs)  # one lock order for every caller: no deadlock
    with transaction.atomic():
        rows = {
            row.key: row for row in RateLimitBucket.objects.select_for_update().filter(key__in=keys).order_by("key")
        }
        for k in keys:
            if k not in rows:
                # get_or_create retries the get when a concurrent create wins the unique key.
                rows[k] = RateLimitBucket.objects.select_for_update().get_or_create(key=k)[0]
        now = _database_now()  # read once the locks are held, or it could be stale
        slot = max(now, *(row.tat for row in rows.values()))
        wait = slot - now
        if wait > max_wait:
            raise RateLimitWait(wait)
        for k in keys:
            RateLimitBucket.objects.filter(pk=rows[k].pk).update(tat=slot + costs[k])
    return Reservation(wait, slot)


class _PostgresClock(Func):
    """PostgreSQL's clock inside a query, in seconds since the epoch."""

    template = _PG_CLOCK
    output_field = FloatField()


def _database_now() -> float:
    """PostgreSQL's clock, so that machines agree; elsewhere (SQLite, one machine) this one's."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT " + _PG_CLOCK)
            return float(cursor.fetchone()[0])
    return time.time()
