"""The global rate limit spaces reservations evenly, on the database and on Redis alike.

Assertions are on reserved slots and returned waits, not on wall-clock durations, so that a slow
machine does not make them fail; the only timing ones are lower bounds."""

from __future__ import annotations

import threading
import time
import uuid
from itertools import pairwise
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from feedback.drafting import ratelimit
from feedback.drafting.models import RateLimitBucket
from feedback.drafting.ratelimit import RateLimitWait, _reserve, acquire, backend_name, refund
from tests.conftest import need_service

pytestmark = pytest.mark.django_db

REDIS_URL = "redis://127.0.0.1:6379/14"
EPS = 1e-5  # Redis rounds slots to the microsecond


@pytest.fixture(params=["database", "redis"])
def backend(request, settings) -> str:
    if request.param == "redis":
        need_service("redis", "127.0.0.1", 6379)
        settings.RATE_LIMIT_REDIS_URL = REDIS_URL
    else:
        settings.RATE_LIMIT_REDIS_URL = ""
    settings.RATE_LIMIT_BACKEND = request.param
    settings.LLM_REQUESTS_PER_MINUTE = 0
    settings.LLM_TOKENS_PER_MINUTE = 0
    assert backend_name() == request.param
    return request.param


@pytest.fixture
def key(backend):
    name = f"test-{uuid.uuid4().hex}"
    yield name
    ratelimit.reset(name)


def stored_keys(backend: str, key: str) -> list[str]:
    """The keys the backend holds for `key`, without the Redis prefix."""
    names = [key + ":rpm", key + ":tpm"]
    if backend == "redis":
        client = ratelimit._redis()[0]
        return [n for n in names if client.exists(ratelimit.REDIS_PREFIX + n)]
    return sorted(RateLimitBucket.objects.filter(key__in=names).values_list("key", flat=True))


def stored_tat(backend: str, name: str) -> float:
    if backend == "redis":
        stored = ratelimit._redis()[0].get(ratelimit.REDIS_PREFIX + name)
        assert stored is not None
        return float(stored) / 1e6
    return RateLimitBucket.objects.get(key=name).tat


def test_backend_name_follows_the_settings(settings):
    settings.RATE_LIMIT_BACKEND = "auto"
    settings.RATE_LIMIT_REDIS_URL = REDIS_URL
    assert backend_name() == "redis"
    settings.RATE_LIMIT_REDIS_URL = ""
    assert backend_name() == "database"
    settings.RATE_LIMIT_BACKEND = "database"
    settings.RATE_LIMIT_REDIS_URL = REDIS_URL
    assert backend_name() == "database"
    settings.RATE_LIMIT_BACKEND = "redis"
    settings.RATE_LIMIT_REDIS_URL = ""
    with pytest.raises(ImproperlyConfigured):
        backend_name()
    settings.RATE_LIMIT_BACKEND = "memory"
    with pytest.raises(ImproperlyConfigured):
        backend_name()


def test_requests_are_spaced_one_interval_apart(key):
    got, moments = [], []
    for _ in range(10):
        before = time.time()
        got.append(_reserve(key, requests_per_minute=600, tokens_per_minute=0, max_wait=60))
        moments.append((before, time.time()))
    slots = [r.slot for r in got]
    assert [b - a for a, b in pairwise(slots)] == pytest.approx([0.1] * 9, abs=EPS)
    assert got[0].wait == 0.0
    # Each wait is its slot seen from the moment of the call, however long the calls took (a busy
    # machine): slot - wait falls within the call.
    for reservation, (before, after) in zip(got[1:], moments[1:], strict=True):
        assert before - EPS <= reservation.slot - reservation.wait <= after + EPS


def test_limits_default_to_the_settings(key, settings):
    settings.LLM_REQUESTS_PER_MINUTE = 1200
    first, second = _reserve(key, max_wait=60), _reserve(key, max_wait=60)
    assert second.slot - first.slot == pytest.approx(0.05, abs=EPS)


def test_acquire_sleeps_until_its_slot(key):
    assert acquire(key, requests_per_minute=600, max_wait=5) == 0.0
    started = time.monotonic()
    slept = acquire(key, requests_per_minute=600, max_wait=5)
    elapsed = time.monotonic() - started
    assert 0.05 < slept <= 0.1 + EPS
    assert elapsed >= slept - 0.005  # a lower bound only: the sleep happened


def test_a_slot_too_far_raises_and_reserves_nothing(key, backend):
    limits: dict[str, Any] = {"requests_per_minute": 300, "max_wait": 0.3}  # one request every 0.2 s
    _first, second = _reserve(key, **limits), _reserve(key, **limits)
    with pytest.raises(RateLimitWait) as raised:
        _reserve(key, **limits)
    assert 0.3 < raised.value.seconds <= 0.4 + EPS
    time.sleep(raised.value.seconds)
    third = _reserve(key, **limits)
    assert third.wait <= 0.3
    # Had the refused call reserved its slot, this one would be two intervals after the second.
    assert second.slot + 0.2 - EPS <= third.slot < second.slot + 0.4 - EPS


def test_tokens_space_calls_and_the_later_key_wins(key):
    limits = {"requests_per_minute": 600, "tokens_per_minute": 6000, "max_wait": 60}  # 0.1 s/request, 0.01 s/token
    first = _reserve(key, tokens=20, **limits)
    second = _reserve(key, tokens=1, **limits)  # the 20 tokens take 0.2 s: longer than a request's 0.1 s
    third = _reserve(key, tokens=1, **limits)  # one token is 0.01 s: now the request interval rules
    fourth = _reserve(key, tokens=0, **limits)  # no tokens: only the request key counts
    assert second.slot - first.slot == pytest.approx(0.2, abs=EPS)
    assert third.slot - second.slot == pytest.approx(0.1, abs=EPS)
    assert fourth.slot - third.slot == pytest.approx(0.1, abs=EPS)
    assert second.wait == pytest.approx(0.2, abs=0.05)
    # Tokens alone: the fourth took none, so the tokens key is free one token after the third's slot.
    fifth = _reserve(key, tokens=100, requests_per_minute=0, tokens_per_minute=6000, max_wait=60)
    assert fifth.slot == pytest.approx(third.slot + 0.01, abs=EPS)


def test_refund_moves_the_tokens_back_but_not_before_now(key, backend):
    limits = {"requests_per_minute": 0, "tokens_per_minute": 600}  # 0.1 s per token
    first = _reserve(key, tokens=50, max_wait=60, **limits)  # tokens busy for 5 s
    refund(key, tokens=40, tokens_per_minute=600)  # only 10 were used: 1 s
    second = _reserve(key, tokens=1, max_wait=60, **limits)
    assert second.slot == pytest.approx(first.slot + 1.0, abs=EPS)
    refund(key, tokens=10_000, tokens_per_minute=600)  # far more than reserved: back to now, not the past
    assert stored_tat(backend, key + ":tpm") >= first.slot  # the first slot was "now" then
    third = _reserve(key, tokens=1, max_wait=60, **limits)
    assert third.wait == 0.0
    assert third.slot >= first.slot
    fourth = _reserve(key, tokens=1, max_wait=60, **limits)
    assert fourth.slot - third.slot == pytest.approx(0.1, abs=EPS)


def test_refund_of_a_key_never_reserved_creates_nothing(key, backend):
    refund(key, tokens=10, tokens_per_minute=600)
    assert stored_keys(backend, key) == []


def test_no_limit_returns_at_once_touching_no_storage(key, backend, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert acquire(key, tokens=500) == 0.0  # the settings say 0: no limit
        assert acquire(key, tokens=500, requests_per_minute=0, tokens_per_minute=0) == 0.0
        assert acquire(key, tokens=0, requests_per_minute=0, tokens_per_minute=600) == 0.0
        refund(key, tokens=5, tokens_per_minute=0)
    assert stored_keys(backend, key) == []
    assert not RateLimitBucket.objects.exists()


def test_only_limited_keys_are_stored(key, backend):
    _reserve(key, tokens=5, requests_per_minute=600, tokens_per_minute=0)
    assert stored_keys(backend, key) == [key + ":rpm"]
    _reserve(key, tokens=5, requests_per_minute=600, tokens_per_minute=6000)
    assert stored_keys(backend, key) == [key + ":rpm", key + ":tpm"]
    ratelimit.reset(key)
    assert stored_keys(backend, key) == []


def test_negative_tokens_are_refused(key):
    with pytest.raises(ValueError, match="negative"):
        _reserve(key, tokens=-1, requests_per_minute=600)


@pytest.mark.parametrize("backend", ["database"], indirect=True)
def test_database_backend_takes_few_queries(key, django_assert_max_num_queries):
    limits = {"tokens": 10, "requests_per_minute": 600, "tokens_per_minute": 6000, "max_wait": 60}
    _reserve(key, **limits)  # creates the rows
    # Savepoint, one locking SELECT for both keys, the clock on PostgreSQL, two UPDATEs, release.
    with django_assert_max_num_queries(6):
        _reserve(key, **limits)


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
def test_redis_keys_expire_and_hold_the_tat(key):
    reserved = _reserve(key, tokens=60_000, requests_per_minute=600, tokens_per_minute=6000, max_wait=60)
    assert stored_tat("redis", key + ":rpm") == pytest.approx(reserved.slot + 0.1, abs=EPS)
    assert stored_tat("redis", key + ":tpm") == pytest.approx(reserved.slot + 600, abs=EPS)
    client = ratelimit._redis()[0]
    rpm_key, tpm_key = ratelimit.REDIS_PREFIX + key + ":rpm", ratelimit.REDIS_PREFIX + key + ":tpm"
    assert 59_000 < client.pttl(rpm_key) <= 60_000  # at least a minute
    assert 599_000 < client.pttl(tpm_key) <= 600_000  # or as long as the reservation runs


@pytest.mark.django_db(transaction=True)
def test_concurrent_callers_get_distinct_evenly_spaced_slots(key, backend):
    threads_count, per_thread, interval = 6, 5, 0.01  # 30 slots at 6000 requests per minute
    slots: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(threads_count)

    def work() -> None:
        try:
            start.wait()
            for _ in range(per_thread):
                slot = _reserve(key, tokens=0, requests_per_minute=6000, max_wait=60).slot
                with lock:
                    slots.append(slot)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len(slots) == threads_count * per_thread
    ordered = sorted(slots)
    gaps = [b - a for a, b in pairwise(ordered)]
    assert min(gaps) >= interval - EPS, gaps
    # Every reservation moved the state on: the next slot comes after all thirty.
    assert _reserve(key, requests_per_minute=6000, max_wait=60).slot >= ordered[-1] + interval - EPS
