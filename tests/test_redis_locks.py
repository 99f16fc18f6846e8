"""cache.lock(): redis-py's Lock interface (acquire, release, extend,
reacquire, locked, owned, the context manager, its errors and their
messages), keyval_backend's fencing tokens, and get_or_set(lock=True).

A lock's expiry is the database's clock, which freezegun does not stop: a
holder's expiry is made to pass by moving its row's ``expires`` into the past
(:func:`tests.redis_reference.force_expire`), and waits are a few hundredths
of a second of ``blocking_timeout``. The tests run on committed data
(``transaction=True``), as locks between threads need.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from .redis_reference import (
    REFERENCE,
    LockError,
    LockNotOwnedError,
    WrongType,
    force_expire,
    ours_only,
    unlike_django_redis,
)

# Committed data: a lock's statements may run on a connection of their own.
pytestmark = [] if REFERENCE else [pytest.mark.django_db(transaction=True)]

FENCING = "fencing tokens are keyval_backend's"
NOT_OWNED = "Cannot release a lock that's not owned or is already unlocked."


def in_thread(function: Callable[[], Any]) -> Any:
    """``function()`` run in another thread (with its own connection), its
    result or exception brought back."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        from django.db import connections

        try:
            outcome["result"] = function()
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


def test_acquire_and_release(rcache: Any) -> None:
    lock = rcache.lock("job")
    assert lock.locked() is False
    assert lock.owned() is False
    assert lock.acquire() is True
    assert lock.locked() is True
    assert lock.owned() is True
    assert lock.release() is None
    assert lock.locked() is False
    assert lock.owned() is False
    assert lock.acquire(blocking=False) is True
    lock.release()


def test_the_lock_is_a_key(rcache: Any) -> None:
    lock = rcache.lock("job")
    assert rcache.has_key("job") is False
    lock.acquire()
    assert rcache.has_key("job") is True
    assert rcache.keys("j*") == ["job"]
    lock.release()
    assert rcache.has_key("job") is False


def test_a_held_lock_is_not_taken_again(rcache: Any) -> None:
    mine = rcache.lock("job")
    theirs = rcache.lock("job")
    assert mine.acquire(blocking=False) is True
    assert theirs.acquire(blocking=False) is False
    assert theirs.locked() is True
    assert theirs.owned() is False
    began = time.monotonic()
    assert theirs.acquire(blocking_timeout=0.05, sleep=0.01) is False
    assert time.monotonic() - began < 5
    mine.release()
    assert theirs.acquire(blocking=False) is True
    theirs.release()


def test_a_lock_is_not_reentrant(rcache: Any) -> None:
    lock = rcache.lock("job")
    assert lock.acquire() is True
    assert lock.acquire(blocking=False) is False
    assert lock.owned() is True
    lock.release()
    assert lock.locked() is False


def test_blocking_false_in_the_constructor(rcache: Any) -> None:
    rcache.lock("job").acquire()
    lock = rcache.lock("job", blocking=False)
    assert lock.acquire() is False
    assert lock.acquire(blocking=True, blocking_timeout=0.02, sleep=0.01) is False


def test_blocking_timeout_in_the_constructor(rcache: Any) -> None:
    rcache.lock("job").acquire()
    lock = rcache.lock("job", blocking_timeout=0.05, sleep=0.01)
    began = time.monotonic()
    assert lock.acquire() is False
    assert time.monotonic() - began >= 0.02


def test_a_blocked_acquire_takes_the_lock_once_released(rcache: Any) -> None:
    holder = rcache.lock("job", thread_local=False)
    holder.acquire()
    releaser = threading.Timer(0.1, in_thread, args=(holder.release,))
    releaser.start()
    try:
        waiter = rcache.lock("job")
        assert waiter.acquire(blocking_timeout=10, sleep=0.01) is True
        assert waiter.owned() is True
        waiter.release()
    finally:
        releaser.join()


def test_names_are_per_version_and_prefix(make_rcache: Any) -> None:
    cache = make_rcache(KEY_PREFIX="p")
    other = make_rcache(KEY_PREFIX="q")
    one = cache.lock("job")
    two = cache.lock("job", version=2)
    three = other.lock("job")
    assert one.acquire(blocking=False) is True
    assert two.acquire(blocking=False) is True
    assert three.acquire(blocking=False) is True
    assert cache.has_key("job", version=2) is True
    two.release()
    assert cache.has_key("job", version=2) is False
    assert cache.has_key("job") is True
    assert other.has_key("job") is True


def test_the_context_manager(rcache: Any) -> None:
    lock = rcache.lock("job")
    with lock as held:
        assert held is lock
        assert lock.owned() is True
        assert rcache.lock("job").acquire(blocking=False) is False
    assert lock.locked() is False


def test_the_context_manager_releases_on_an_error(rcache: Any) -> None:
    lock = rcache.lock("job")
    with pytest.raises(ZeroDivisionError), lock:
        1 / 0  # noqa: B018
    assert lock.locked() is False


def test_the_context_manager_that_cannot_acquire(rcache: Any) -> None:
    rcache.lock("job").acquire()
    entered = False
    with (
        pytest.raises(LockError, match=r"^Unable to acquire lock within the time specified$"),
        rcache.lock("job", blocking_timeout=0.02, sleep=0.01),
    ):
        entered = True
    assert entered is False
    with pytest.raises(LockError), rcache.lock("job", blocking=False):
        pass


def test_the_context_manager_when_the_lock_was_lost(rcache: Any) -> None:
    with pytest.raises(LockNotOwnedError), rcache.lock("job"):
        rcache.delete("job")


# -- errors ---------------------------------------------------------------------------


def test_release_of_a_lock_not_held(rcache: Any) -> None:
    lock = rcache.lock("job")
    with pytest.raises(LockError) as raised:
        lock.release()
    assert str(raised.value) == NOT_OWNED
    assert not isinstance(raised.value, LockNotOwnedError)
    lock.acquire()
    lock.release()
    with pytest.raises(LockError, match="not owned or is already unlocked"):
        lock.release()


def test_release_of_a_lock_held_by_another(rcache: Any) -> None:
    rcache.lock("job").acquire()
    with pytest.raises(LockError, match="not owned or is already unlocked"):
        rcache.lock("job").release()
    assert rcache.has_key("job") is True


def test_release_after_expiry(rcache: Any) -> None:
    lock = rcache.lock("job", timeout=10)
    lock.acquire()
    force_expire(rcache, "job")
    assert lock.locked() is False
    assert lock.owned() is False
    with pytest.raises(LockNotOwnedError, match=r"^Cannot release a lock that's no longer owned$"):
        lock.release()
    # The failed release forgot the token.
    with pytest.raises(LockError, match="not owned or is already unlocked"):
        lock.release()


def test_release_after_the_key_was_deleted(rcache: Any) -> None:
    lock = rcache.lock("job")
    lock.acquire()
    assert rcache.delete("job") is True
    assert lock.locked() is False
    with pytest.raises(LockNotOwnedError):
        lock.release()


def test_expiry_lets_another_take_over(rcache: Any) -> None:
    first = rcache.lock("job", timeout=10)
    second = rcache.lock("job", timeout=100)
    first.acquire()
    assert second.acquire(blocking=False) is False
    force_expire(rcache, "job")
    assert second.acquire(blocking=False) is True
    assert first.owned() is False
    assert first.locked() is True
    # The old owner touches nothing of the new holding.
    with pytest.raises(LockNotOwnedError):
        first.extend(5)
    with pytest.raises(LockNotOwnedError):
        first.reacquire()
    with pytest.raises(LockNotOwnedError):
        first.release()
    assert rcache.ttl("job") == 100
    assert second.owned() is True
    second.release()


def test_a_lock_on_a_key_holding_a_value_is_taken(rcache: Any) -> None:
    """SET NX fails on any existing key: the lock waits like for a holder."""
    rcache.set("job", "a value")
    lock = rcache.lock("job")
    assert lock.acquire(blocking=False) is False
    assert lock.locked() is True
    assert rcache.get("job") == "a value"
    rcache.sadd("set-job", "m")
    assert rcache.lock("set-job").acquire(blocking=False) is False
    assert rcache.smembers("set-job") == {"m"}


def test_a_lock_on_an_expired_key(rcache: Any) -> None:
    rcache.set("job", "a value", timeout=10)
    force_expire(rcache, "job")
    lock = rcache.lock("job")
    assert lock.acquire(blocking=False) is True
    lock.release()


def test_clear_breaks_locks(rcache: Any) -> None:
    lock = rcache.lock("job")
    lock.acquire()
    rcache.clear()
    assert lock.locked() is False
    assert rcache.lock("job").acquire(blocking=False) is True


# -- timeouts -------------------------------------------------------------------------


def test_a_timeout_is_the_key_s_ttl(rcache: Any) -> None:
    lock = rcache.lock("job", timeout=10)
    lock.acquire()
    assert rcache.ttl("job") == 10
    persistent = rcache.lock("other")
    persistent.acquire()
    assert rcache.ttl("other") is None


def test_a_timeout_of_zero_is_no_timeout(rcache: Any) -> None:
    """redis-py takes a falsy timeout for none."""
    lock = rcache.lock("job", timeout=0)
    lock.acquire()
    assert rcache.ttl("job") is None


def test_a_fractional_timeout(rcache: Any) -> None:
    rcache.lock("job", timeout=2.7).acquire()
    assert rcache.ttl("job") == 3
    assert 2_000 < rcache.pttl("job") <= 2_700


def test_extend(rcache: Any) -> None:
    lock = rcache.lock("job", timeout=10)
    lock.acquire()
    assert lock.extend(5) is True
    assert rcache.ttl("job") == 15
    assert lock.extend(3, replace_ttl=True) is True
    assert rcache.ttl("job") == 3
    assert lock.extend(0.5) is True
    assert 3_000 < rcache.pttl("job") <= 3_500


def test_extend_errors(rcache: Any) -> None:
    lock = rcache.lock("job", timeout=10)
    with pytest.raises(LockError, match=r"^Cannot extend an unlocked lock$"):
        lock.extend(5)
    forever = rcache.lock("forever")
    forever.acquire()
    with pytest.raises(LockError, match=r"^Cannot extend a lock with no timeout$"):
        forever.extend(5)
    lock.acquire()
    force_expire(rcache, "job")
    with pytest.raises(LockNotOwnedError, match=r"^Cannot extend a lock that's no longer owned$"):
        lock.extend(5)
    assert rcache.has_key("job") is False


def test_reacquire(rcache: Any) -> None:
    lock = rcache.lock("job", timeout=10)
    lock.acquire()
    lock.extend(20)
    assert rcache.ttl("job") == 30
    assert lock.reacquire() is True
    assert rcache.ttl("job") == 10


def test_reacquire_errors(rcache: Any) -> None:
    lock = rcache.lock("job", timeout=10)
    with pytest.raises(LockError, match=r"^Cannot reacquire an unlocked lock$"):
        lock.reacquire()
    forever = rcache.lock("forever")
    forever.acquire()
    with pytest.raises(LockError, match=r"^Cannot reacquire a lock with no timeout$"):
        forever.reacquire()
    lock.acquire()
    rcache.delete("job")
    with pytest.raises(
        LockNotOwnedError, match=r"^Cannot reacquire a lock that's no longer owned$"
    ):
        lock.reacquire()


def test_acquire_with_a_token(rcache: Any) -> None:
    lock = rcache.lock("job")
    assert lock.acquire(token="my-token") is True
    assert lock.owned() is True
    lock.release()
    assert lock.acquire(token=b"bytes-token") is True
    assert lock.owned() is True
    lock.release()


# -- threads --------------------------------------------------------------------------


@unlike_django_redis(
    "redis-py's thread-local token exists only in the thread that made the Lock: "
    "owned() and release() elsewhere raise AttributeError"
)
def test_a_thread_local_token_is_not_seen_by_other_threads(rcache: Any) -> None:
    lock = rcache.lock("job")
    lock.acquire()
    assert in_thread(lock.owned) is False
    assert in_thread(lock.locked) is True
    with pytest.raises(LockError, match="not owned or is already unlocked"):
        in_thread(lock.release)
    assert lock.owned() is True
    lock.release()


def test_a_shared_token_lets_another_thread_release(rcache: Any) -> None:
    lock = rcache.lock("job", thread_local=False)
    lock.acquire()
    assert in_thread(lock.owned) is True
    in_thread(lock.release)
    assert lock.locked() is False


def test_threads_take_turns(rcache: Any) -> None:
    """8 threads x 5 turns of one lock, each turn checking that nobody else
    is in: a shared marker added on entry, deleted on exit."""
    overlaps: list[int] = []

    def turns() -> None:
        for _ in range(5):
            lock = rcache.lock("job", sleep=0.005)
            with lock:
                if not rcache.add("inside", 1):
                    overlaps.append(1)
                rcache.incr("turns", ignore_key_check=True)
                rcache.delete("inside")

    threads = [threading.Thread(target=lambda: in_thread(turns)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert overlaps == []
    assert rcache.get("turns") == 40
    assert rcache.has_key("job") is False


# -- keyval_backend's own -----------------------------------------------------------


@ours_only(FENCING)
def test_fencing_tokens_increase(rcache: Any) -> None:
    lock = rcache.lock("job", timeout=10)
    assert lock.fencing_token is None
    lock.acquire()
    first = lock.fencing_token
    assert type(first) is int
    lock.release()
    assert lock.fencing_token is None
    lock.acquire()
    second = lock.fencing_token
    assert second > first
    force_expire(rcache, "job")
    other = rcache.lock("job")
    other.acquire()
    assert other.fencing_token > second
    assert lock.fencing_token == second  # what it held, until it finds out
    taken_over = other.fencing_token
    other.release()
    with rcache.lock("job") as third:
        assert third.fencing_token > taken_over


@ours_only(FENCING)
def test_fencing_tokens_increase_past_an_acquire_that_waited(rcache: Any) -> None:
    """An acquire that waits in the database (on a transaction that broke
    the lock, took it and gave it back) gets a larger token than the holding
    it waited through."""
    from django.db import transaction

    rcache.lock("job").acquire()
    broken = threading.Event()
    waiting = threading.Event()
    tokens: dict[str, int] = {}

    def break_take_and_give_back() -> None:
        with transaction.atomic():
            rcache.delete("job")
            broken.set()
            assert waiting.wait(10)
            time.sleep(0.3)  # for the waiter's statement to be blocked on this transaction
            taker = rcache.lock("job")
            assert taker.acquire(blocking=False) is True
            tokens["taker"] = taker.fencing_token
            taker.release()

    def wait_for_the_lock() -> None:
        assert broken.wait(10)
        waiter = rcache.lock("job")
        waiting.set()
        assert waiter.acquire(blocking_timeout=20, sleep=0.01) is True
        tokens["waiter"] = waiter.fencing_token
        waiter.release()

    threads = [
        threading.Thread(target=in_thread, args=(job,))
        for job in (break_take_and_give_back, wait_for_the_lock)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert set(tokens) == {"taker", "waiter"}
    assert tokens["waiter"] > tokens["taker"]


@ours_only(FENCING)
def test_fencing_tokens_of_several_names_all_increase(rcache: Any) -> None:
    tokens: dict[str, list[int]] = {"a": [], "b": []}
    for _ in range(3):
        for name in ("a", "b"):
            with rcache.lock(name) as lock:
                tokens[name].append(lock.fencing_token)
    for seen in tokens.values():
        assert seen == sorted(seen)
        assert len(set(seen)) == len(seen)


@ours_only(FENCING)
def test_a_failed_acquire_leaves_the_fencing_token(rcache: Any) -> None:
    lock = rcache.lock("job")
    lock.acquire()
    token = lock.fencing_token
    assert lock.acquire(blocking=False) is False
    assert lock.fencing_token == token
    assert in_thread(lambda: lock.fencing_token) is None


@ours_only("Redis would GET the token; django-redis then fails to unpickle it")
def test_get_of_a_lock_key_is_wrongtype(rcache: Any) -> None:
    rcache.lock("job").acquire()
    with pytest.raises(WrongType, match=r"^WRONGTYPE"):
        rcache.get("job")
    assert rcache.get_many(["job"]) == {}


@ours_only("django-redis's get_or_set has no lock=")
def test_get_or_set_with_a_lock(rcache: Any) -> None:
    calls: list[int] = []

    def compute() -> str:
        calls.append(1)
        return "computed"

    assert rcache.get_or_set("k", compute, lock=True) == "computed"
    assert rcache.get_or_set("k", compute, lock=True) == "computed"
    assert calls == [1]
    assert rcache.get("k") == "computed"
    assert rcache.get_or_set("plain", "default", lock=True) == "default"
    assert rcache.get_or_set("plain", "other", lock=True) == "default"
    rcache.set("present", "there")
    assert rcache.get_or_set("present", compute, lock=True) == "there"
    assert calls == [1]


@ours_only("django-redis's get_or_set has no lock=")
def test_get_or_set_with_a_lock_keeps_timeout_and_version(rcache: Any) -> None:
    assert rcache.get_or_set("k", lambda: 1, timeout=30, version=2, lock=True) == 1
    assert rcache.ttl("k", version=2) == 30
    assert rcache.has_key("k") is False


@ours_only("django-redis's get_or_set has no lock=")
def test_get_or_set_with_a_lock_leaves_no_lock_behind(rcache: Any) -> None:
    rcache.get_or_set("k", lambda: 1, lock=True)
    assert rcache.keys("*") == ["k"]


@ours_only("django-redis's get_or_set has no lock=")
def test_get_or_set_with_a_lock_when_compute_fails(rcache: Any) -> None:
    def boom() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        rcache.get_or_set("k", boom, lock=True)
    assert rcache.keys("*") == []
    assert rcache.get_or_set("k", lambda: 2, lock=True) == 2


@ours_only("django-redis's get_or_set has no lock=")
def test_get_or_set_with_a_lock_waits_for_the_computing_thread(rcache: Any) -> None:
    started = threading.Event()
    calls: list[str] = []

    def slow() -> str:
        calls.append("slow")
        started.set()
        time.sleep(0.3)
        return "slow"

    def fast() -> str:
        calls.append("fast")
        return "fast"

    worker = threading.Thread(
        target=lambda: in_thread(lambda: rcache.get_or_set("k", slow, lock=True))
    )
    worker.start()
    assert started.wait(10)
    assert rcache.get_or_set("k", fast, lock=True, blocking_timeout=10) == "slow"
    worker.join(30)
    assert calls == ["slow"]


def test_a_reference_run_uses_redis_py_errors() -> None:
    if REFERENCE:
        import redis.exceptions

        assert LockError is redis.exceptions.LockError
    else:
        from keyval_backend import exceptions

        assert issubclass(LockNotOwnedError, LockError)
        assert issubclass(LockError, exceptions.KeyValError)
