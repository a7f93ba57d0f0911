"""Track stores: one contract for memory and Redis; Redis against a real redis-server."""

from __future__ import annotations

import json
import logging
import multiprocessing
import random
import re
import select
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pytest
import redis

from missile_classifier.scoring.features import N_FEATURES
from missile_classifier.scoring.windows import Scaler, StreamMemory, stream_windows
from missile_classifier.service.track_store import (
    MemoryTrackStore,
    RedisTrackStore,
    StoreConflict,
    StoreUnavailable,
    TrackStore,
    create_store,
)
from redis_server import RedisServer, free_port

SCALER = Scaler(np.zeros(N_FEATURES), np.ones(N_FEATURES), 10)
KEY = (7, 3)
MakeStore = Callable[..., TrackStore]


def _points(n: int, start: float = 1_731_308_400.0) -> dict[str, np.ndarray]:
    """A climbing stream sampled every 0.5 s."""
    i = np.arange(n, dtype=np.float64)
    altitude = 450.0 * i
    return {
        "timestamp": start + 0.5 * i,
        "latitude": 64.13 - 0.001 * i,
        "longitude": -21.90 - 0.003 * i,
        "altitude": altitude,
        "radiometric_intensity": 0.833 * altitude / 100_000.0,
    }


def _memory(n: int = 12) -> StreamMemory:
    """A real stream memory after ``n`` points."""
    return stream_windows(_points(n), SCALER)[2]


TEMPLATE = _memory(3)


def _bump(memory: StreamMemory | None) -> tuple[int, StreamMemory]:
    """Step that counts updates: returns the new count (each count is returned exactly once)."""
    base = TEMPLATE if memory is None else memory
    count = (0 if memory is None else memory.count) + 1
    return count, StreamMemory(base.state, base.recent, count)


def _set(memory: StreamMemory) -> Callable[[StreamMemory | None], tuple[None, StreamMemory]]:
    return lambda _: (None, memory)


def _assert_same(got: StreamMemory | None, expected: StreamMemory) -> None:
    assert got is not None
    assert got.state == expected.state
    assert got.count == expected.count
    assert got.recent.dtype == np.float32
    np.testing.assert_array_equal(got.recent, expected.recent)


def _count(store: TrackStore, key: tuple[int, int]) -> int:
    """Updates a held stream has seen."""
    memory = store.get(key)
    assert memory is not None
    return memory.count


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Poll until ``condition()`` holds; fail after ``timeout`` s (something is stuck)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting until {what}")
        time.sleep(0.001)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def _redis_store(url: str, **kwargs: Any) -> RedisTrackStore:
    """A store in its own key namespace, so tests sharing the server do not meet."""
    kwargs.setdefault("prefix", f"test-{uuid.uuid4().hex[:12]}")
    return RedisTrackStore(url, **kwargs)


@pytest.fixture(params=["memory", "redis"])
def make_store(request: pytest.FixtureRequest) -> Iterator[MakeStore]:
    """Build stores of the parametrized kind (keyword arguments go to the constructor)."""
    made: list[TrackStore] = []

    def make(**kwargs: Any) -> TrackStore:
        store: TrackStore
        if request.param == "memory":
            store = MemoryTrackStore(**kwargs)
        else:
            store = _redis_store(request.getfixturevalue("redis_server").url, **kwargs)
        made.append(store)
        return store

    yield make
    for store in made:
        store.clear()
        store.close()


@pytest.fixture
def store(make_store: MakeStore) -> TrackStore:
    return make_store()


# ----------------------------------------------------------------------------- both stores


def test_round_trip_preserves_the_memory_exactly(store: TrackStore) -> None:
    memory = _memory()
    seen: list[StreamMemory | None] = []

    def step(old: StreamMemory | None) -> tuple[str, StreamMemory]:
        seen.append(old)
        return "result", memory

    assert store.update(KEY, step) == "result"
    assert seen == [None]
    _assert_same(store.get(KEY), memory)
    store.update(KEY, step)
    _assert_same(seen[1], memory)


def test_streaming_through_the_store_equals_one_batch(store: TrackStore) -> None:
    columns = _points(15)
    batch, batch_context, _ = stream_windows(columns, SCALER)
    for i in range(15):
        point = {c: v[i : i + 1] for c, v in columns.items()}

        def step(old: StreamMemory | None) -> tuple[tuple[np.ndarray, int], StreamMemory]:
            windows, context, new = stream_windows(point, SCALER, old)  # noqa: B023
            return (windows[0], int(context[0])), new

        window, context = store.update(KEY, step)
        np.testing.assert_array_equal(window, batch[i])
        assert context == batch_context[i]


def test_a_raising_step_stores_nothing(store: TrackStore) -> None:
    error = RuntimeError("boom")

    def fail(_: StreamMemory | None) -> tuple[None, StreamMemory]:
        raise error

    with pytest.raises(RuntimeError) as raised:
        store.update(KEY, fail)
    assert raised.value is error
    assert store.get(KEY) is None
    assert store.active_streams() == 0

    memory = _memory()
    store.update(KEY, _set(memory))
    with pytest.raises(RuntimeError):
        store.update(KEY, fail)
    _assert_same(store.get(KEY), memory)


def test_an_old_timestamp_raises_value_error_and_keeps_the_stream(store: TrackStore) -> None:
    columns = _points(4)
    store.update(KEY, lambda old: (None, stream_windows(columns, SCALER, old)[2]))
    before = store.get(KEY)
    assert before is not None
    with pytest.raises(ValueError, match="strictly increase"):
        store.update(KEY, lambda old: (None, stream_windows(columns, SCALER, old)[2]))
    _assert_same(store.get(KEY), before)


def test_lru_cap_evicts_the_least_recently_updated(make_store: MakeStore) -> None:
    store = make_store(max_streams=3)
    for track in (1, 2, 3, 1, 4):  # 1 is refreshed, so 2 is the oldest when 4 arrives
        store.update((track, 0), _bump)
    assert store.get((2, 0)) is None
    assert all(store.get((track, 0)) is not None for track in (1, 3, 4))
    assert _count(store, (1, 0)) == 2
    assert store.active_streams() == 3


def test_active_streams_delete_and_clear(store: TrackStore) -> None:
    for track in range(5):
        store.update((track, 1), _bump)
    assert store.active_streams() == 5
    assert store.delete((2, 1)) is True
    assert store.delete((2, 1)) is False
    assert store.get((2, 1)) is None
    assert store.active_streams() == 4
    store.clear()
    assert store.active_streams() == 0
    assert store.get((0, 1)) is None
    assert store.update((0, 1), _bump) == 1  # usable after clear


def test_numpy_integers_name_the_same_stream(store: TrackStore) -> None:
    store.update((np.int64(7), np.int32(3)), _bump)  # type: ignore[arg-type]
    assert store.update(KEY, _bump) == 2


def test_ping(store: TrackStore) -> None:
    # A working store answers at once, with nothing (problems are exceptions).
    began = time.perf_counter()
    assert store.ping() is None
    assert time.perf_counter() - began < 0.5


def test_redis_ping_says_why_it_cannot_be_used() -> None:
    # PING must really ask Redis: nothing listens on this port, and the message says where and
    # what was being done, promptly.
    url = f"redis://127.0.0.1:{free_port()}/0"
    store = RedisTrackStore(url, socket_timeout=0.2)
    began = time.perf_counter()
    with pytest.raises(StoreUnavailable) as raised:
        store.ping()
    assert time.perf_counter() - began < 1.0
    assert str(raised.value).startswith(f"Redis at {url} is unreachable while answering PING: ")
    store.close()


def test_redis_ping_follows_the_server_down_and_up() -> None:
    with RedisServer() as server:
        store = RedisTrackStore(server.url, prefix="ping", socket_timeout=0.2)
        assert store.ping() is None  # type: ignore[func-returns-value]
        server.stop()
        with pytest.raises(StoreUnavailable, match="unreachable while answering PING"):
            store.ping()
        server.start()
        assert store.ping() is None  # type: ignore[func-returns-value]
        store.close()


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match=r"^ttl_seconds must be positive, got 0$"):
        MemoryTrackStore(ttl_seconds=0)
    with pytest.raises(ValueError, match=r"^max_streams must be at least 1, got 0$"):
        RedisTrackStore("redis://127.0.0.1:1/0", max_streams=0)


def test_a_cap_of_one_stream_keeps_the_newest(make_store: MakeStore) -> None:
    store = make_store(max_streams=1)  # the smallest valid cap
    store.update((1, 0), _bump)
    store.update((2, 0), _bump)
    assert store.get((1, 0)) is None
    assert _count(store, (2, 0)) == 1
    assert store.active_streams() == 1


def test_create_store_picks_redis_only_with_a_url() -> None:
    for url in (None, ""):
        with create_store(url, ttl_seconds=5.0, max_streams=9) as memory:
            assert isinstance(memory, MemoryTrackStore)
            assert (memory.kind, memory.ttl_seconds, memory.max_streams) == ("memory", 5.0, 9)
    with create_store("redis://127.0.0.1:1/0", ttl_seconds=5.0, max_streams=9) as shared:
        assert isinstance(shared, RedisTrackStore)  # created without connecting
        assert (shared.kind, shared.ttl_seconds, shared.max_streams) == ("redis", 5.0, 9)


def test_documented_defaults() -> None:
    # An hour and 100,000 streams unless configured; Redis keys under "missile-classifier",
    # one more ":<namespace>" level per model version, and a one-second socket timeout.
    url = "redis://127.0.0.1:1/0"
    for store in (MemoryTrackStore(), create_store(None)):
        assert (store.ttl_seconds, store.max_streams) == (3600.0, 100_000)
    for shared in (RedisTrackStore(url), create_store(url)):
        assert isinstance(shared, RedisTrackStore)
        assert (shared.ttl_seconds, shared.max_streams) == (3600.0, 100_000)
        assert (shared.prefix, shared.socket_timeout) == ("missile-classifier", 1.0)
    prefixes = [create_store(url, namespace=ns) for ns in (None, "", "v1")]
    assert [s.prefix for s in prefixes if isinstance(s, RedisTrackStore)] == [
        "missile-classifier",
        "missile-classifier",
        "missile-classifier:v1",
    ]


# ----------------------------------------------------------------------------- memory store


def test_memory_ttl_counts_from_the_last_update() -> None:
    clock = FakeClock()
    store = MemoryTrackStore(ttl_seconds=10.0, clock=clock)
    store.update(KEY, _bump)
    store.update((8, 3), _bump)
    clock.now += 6
    store.update(KEY, _bump)  # refreshed: lives until +16
    clock.now += 5
    assert store.active_streams() == 1  # counting drops the expired stream unasked
    assert store.get((8, 3)) is None
    assert store.get(KEY) is not None
    clock.now += 5
    assert store.get(KEY) is None
    assert store.active_streams() == 0
    assert store.update(KEY, _bump) == 1  # an expired stream starts afresh


def test_memory_stream_expires_exactly_at_its_ttl() -> None:
    clock = FakeClock()
    store = MemoryTrackStore(ttl_seconds=10.0, clock=clock)
    store.update(KEY, _bump)
    clock.now += 9.5
    assert store.active_streams() == 1
    clock.now += 0.5  # exactly ttl_seconds after the update: gone, for counting as for reading
    assert store.active_streams() == 0
    assert store.get(KEY) is None


def test_memory_concurrent_updates_are_not_lost() -> None:
    store = MemoryTrackStore()
    start = threading.Barrier(8)
    counts: list[int] = []

    def slow_bump(memory: StreamMemory | None) -> tuple[int, StreamMemory]:
        time.sleep(0)  # let another thread run between the read and the write
        return _bump(memory)

    def worker() -> None:
        start.wait()
        counts.extend(store.update(KEY, slow_bump) for _ in range(50))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(counts) == list(range(1, 401))
    assert _count(store, KEY) == 400


def test_memory_other_streams_proceed_while_a_step_runs() -> None:
    store = MemoryTrackStore()
    other = threading.Thread(target=store.update, args=((8, 3), _bump))

    def step(memory: StreamMemory | None) -> tuple[int, StreamMemory]:
        other.start()
        other.join(timeout=5)  # would wait in vain if one lock served every stream
        assert not other.is_alive(), "an update of another stream waited for this one"
        return _bump(memory)

    assert store.update(KEY, step) == 1
    assert _count(store, (8, 3)) == 1


def test_memory_delete_waits_for_an_update_of_the_stream() -> None:
    store = MemoryTrackStore()
    store.update(KEY, _bump)
    deleted: list[bool] = []
    deleter = threading.Thread(target=lambda: deleted.append(store.delete(KEY)))

    def waiting_for_the_stream_lock() -> bool:
        key_lock = store._key_locks.get(KEY)  # this update and the deleter: two users
        return not deleter.is_alive() or (key_lock is not None and key_lock.users == 2)

    def step(memory: StreamMemory | None) -> tuple[int, StreamMemory]:
        deleter.start()
        _wait_until(waiting_for_the_stream_lock, "the delete waits for the stream's lock")
        assert deleted == [], "the delete did not wait for the update in flight"
        return _bump(memory)

    assert store.update(KEY, step) == 2
    deleter.join()
    assert deleted == [True]  # it deleted what the update stored, so the stream is gone
    assert store.get(KEY) is None


def test_memory_store_hands_out_copies() -> None:
    store = MemoryTrackStore()
    store.update(KEY, _set(_memory()))
    held = store.get(KEY)
    assert held is not None
    held.recent[:] = -1.0
    held.state.count = -1
    _assert_same(store.get(KEY), _memory())


# ----------------------------------------------------------------------------- Redis store


def test_redis_ttl_expires_streams(redis_server: RedisServer) -> None:
    # Margins of 0.3 s or more around each expiry, so a loaded CI machine cannot flip them.
    store = _redis_store(redis_server.url, ttl_seconds=1.0)
    store.update(KEY, _bump)
    store.update((8, 3), _bump)  # expires at t = 1.0
    time.sleep(0.6)
    store.update(KEY, _bump)  # refreshed: expires at t = 1.6
    time.sleep(0.7)  # t = 1.3
    assert store.get((8, 3)) is None
    assert store.active_streams() == 1
    time.sleep(0.9)  # t = 2.2
    assert store.get(KEY) is None
    assert store.active_streams() == 0
    assert store.update(KEY, _bump) == 1


def test_two_replicas_share_streams_and_the_cap(redis_server: RedisServer) -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    first = RedisTrackStore(redis_server.url, max_streams=2, prefix=prefix)
    second = RedisTrackStore(redis_server.url, max_streams=2, prefix=prefix)
    assert first.update(KEY, _bump) == 1
    assert second.update(KEY, _bump) == 2
    assert _count(first, KEY) == 2
    second.update((1, 1), _bump)
    first.update((2, 2), _bump)  # KEY is now the least recently updated of three
    assert second.get(KEY) is None
    assert first.active_streams() == second.active_streams() == 2
    assert second.delete((1, 1)) and first.get((1, 1)) is None
    second.clear()
    assert first.active_streams() == 0
    first.close()
    second.close()


def test_redis_clear_leaves_other_prefixes_alone(redis_server: RedisServer) -> None:
    mine, other = _redis_store(redis_server.url), _redis_store(redis_server.url)
    mine.update(KEY, _bump)
    other.update(KEY, _bump)
    mine.clear()
    assert mine.get(KEY) is None
    assert other.get(KEY) is not None and other.active_streams() == 1
    other.clear()


@pytest.mark.parametrize("special", ["*", "?", "[xy]", "\\x"])
def test_redis_prefix_with_glob_characters_counts_and_clears_only_its_own(
    redis_server: RedisServer, special: str
) -> None:
    # Unescaped, the pattern "<base><special>:stream:*" would also match the keys of the store
    # whose prefix is "<base>x": clearing one deployment would wipe another's streams.
    # (Not escaping "]" would be an equivalent mutant of _glob_escape: once "[" is escaped, a
    # "]" opens no class, and Redis matches it literally.)
    base = f"glob-{uuid.uuid4().hex[:12]}"
    mine = RedisTrackStore(redis_server.url, prefix=base + special)
    other = RedisTrackStore(redis_server.url, prefix=base + "x")
    admin = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        for track in (1, 2):
            mine.update((track, 0), _bump)
        for track in (1, 2, 3):
            other.update((track, 0), _bump)
        assert (mine.active_streams(), other.active_streams()) == (2, 3)
        mine.clear()
        assert mine.active_streams() == 0 and mine.get((1, 0)) is None
        assert sorted(admin.keys(f"{base}x:*")) == [
            f"{base}x:stream:1:0",
            f"{base}x:stream:2:0",
            f"{base}x:stream:3:0",
            f"{base}x:streams",
        ]
        assert other.active_streams() == 3
        assert all(_count(other, (track, 0)) == 1 for track in (1, 2, 3))
        other.clear()
        assert admin.keys(f"{base}*") == []
    finally:
        for store in (mine, other):
            store.clear()
            store.close()
        admin.close()


def _hammer(url: str, prefix: str, threads: int, updates: int) -> list[int]:
    """One "replica": its own store and client, several threads updating one stream."""
    store = RedisTrackStore(url, prefix=prefix)
    counts: list[int] = []
    start = threading.Barrier(threads)

    def worker() -> None:
        start.wait()
        counts.extend(store.update(KEY, _bump) for _ in range(updates))

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    store.close()
    return counts


def test_redis_concurrent_updates_from_processes_are_not_lost(redis_server: RedisServer) -> None:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    replicas, threads, updates = 2, 4, 25
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(replicas, mp_context=context) as pool:
        futures = [
            pool.submit(_hammer, redis_server.url, prefix, threads, updates)
            for _ in range(replicas)
        ]
        # This process is a third replica meanwhile.
        local = _hammer(redis_server.url, prefix, threads, updates)
        counts = local + [count for future in futures for count in future.result()]
    total = (replicas + 1) * threads * updates
    assert sorted(counts) == list(range(1, total + 1))
    store = RedisTrackStore(redis_server.url, prefix=prefix)
    assert _count(store, KEY) == total
    store.clear()
    store.close()


def test_redis_gives_up_after_bounded_conflicts(redis_server: RedisServer) -> None:
    store = _redis_store(redis_server.url)
    rival = RedisTrackStore(redis_server.url, prefix=store.prefix)
    store.max_attempts = 3
    calls = 0

    def step(memory: StreamMemory | None) -> tuple[int, StreamMemory]:
        nonlocal calls
        calls += 1
        rival.update(KEY, _bump)  # another replica commits while this update is in flight
        return _bump(memory)

    with pytest.raises(StoreConflict) as raised:
        store.update(KEY, step)
    assert str(raised.value) == (
        "gave up updating stream 7:3 after 3 attempts: other updates of the same stream kept "
        "committing first"
    )
    assert calls == 3
    assert _count(store, KEY) == 3  # the rival's three only
    store.clear()
    rival.close()
    store.close()


def test_redis_connection_lost_before_the_commit_is_retried_at_once(
    redis_server: RedisServer,
) -> None:
    store = _redis_store(redis_server.url)
    store.update(KEY, _bump)
    admin = redis.Redis.from_url(redis_server.url)
    calls = 0

    def step(memory: StreamMemory | None) -> tuple[int, StreamMemory]:
        nonlocal calls
        calls += 1
        if calls == 1:  # drop the store's connection before its commit
            admin.client_kill_filter(_type="normal", skipme=True)
        return _bump(memory)

    # redis-py re-sends the commit on a new connection: step is not run again.
    assert store.update(KEY, step) == 2
    assert calls == 1
    assert _count(store, KEY) == 2
    store.clear()
    admin.close()


def test_redis_keys_follow_the_documented_layout(redis_server: RedisServer) -> None:
    store = _redis_store(redis_server.url)
    admin = redis.Redis.from_url(redis_server.url, decode_responses=True)
    store.update(KEY, _set(_memory()))
    raw = admin.get(f"{store.prefix}:stream:7:3")
    assert raw is not None
    version, payload = str(raw).split("|", 1)  # a random version of 16 hex digits, then JSON
    assert re.fullmatch("[0-9a-f]{16}", version) and json.loads(payload) == _memory().to_dict()
    assert 0 < admin.pttl(f"{store.prefix}:stream:7:3") <= 3_600_000
    assert admin.zrange(f"{store.prefix}:streams", 0, -1) == ["7:3"]
    # Streams written by another replica, more than one clearing batch of them.
    with admin.pipeline(transaction=False) as pipe:
        for track in range(2_500):
            pipe.set(f"{store.prefix}:stream:{track}:0", "{}")
        pipe.execute()
    store.clear()
    assert admin.keys(f"{store.prefix}:*") == []
    admin.close()


def test_redis_unreadable_value_starts_the_stream_afresh(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = _redis_store(redis_server.url)
    admin = redis.Redis.from_url(redis_server.url)
    raw = '{"state": {"count": 1}, "recent": [], "count": 1}'
    admin.set(f"{store.prefix}:stream:7:3", raw)
    with pytest.raises((ValueError, KeyError, TypeError)) as unreadable:
        StreamMemory.from_dict(json.loads(raw))
    assert store.get(KEY) is None
    assert store.update(KEY, _bump) == 1
    # Reading and updating both say which stream of which store, and why.
    warning = f"stream 7:3 in {store.prefix} is unreadable, starting it afresh: " + repr(
        unreadable.value
    )
    logged = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert logged == [("missile_classifier.service.track_store", logging.WARNING, warning)] * 2
    store.clear()
    admin.close()


def test_redis_refusals_are_unavailable_and_bugs_are_not(redis_server: RedisServer) -> None:
    store = _redis_store(redis_server.url)
    admin = redis.Redis.from_url(redis_server.url)
    admin.config_set("maxmemory", 1)  # Redis is up but refuses writes
    try:
        with pytest.raises(StoreUnavailable) as raised:
            store.update(KEY, _bump)
    finally:
        admin.config_set("maxmemory", 0)
    assert str(raised.value).startswith(
        f"Redis at {redis_server.url} refused updating stream 7:3: "
    ), raised.value
    assert "command not allowed when used memory > 'maxmemory'." in str(raised.value)
    admin.rpush(f"{store.prefix}:stream:7:3", "not a stream")
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        store.get(KEY)
    admin.delete(f"{store.prefix}:stream:7:3")
    admin.close()


def test_redis_timeout_during_commit_says_the_outcome_is_unknown() -> None:
    with RedisServer() as server:
        store = RedisTrackStore(server.url, prefix="commit", socket_timeout=0.2)

        def step(memory: StreamMemory | None) -> tuple[int, StreamMemory]:
            server.pause()  # Redis hangs before the commit
            return _bump(memory)

        try:
            with pytest.raises(StoreUnavailable) as raised:
                store.update(KEY, step)
        finally:
            server.resume()
        assert str(raised.value).startswith(
            f"Redis at {server.url} did not answer in time while updating stream 7:3; "
            "the update may or may not have been stored: "
        ), raised.value
        # The commit sent to the frozen server may still run when it wakes: either is right.
        assert store.update(KEY, _bump) in (1, 2)
        store.close()


def test_redis_outage_raises_quickly_and_recovers() -> None:
    with RedisServer() as server:
        store = RedisTrackStore(server.url, prefix="outage")
        store.update(KEY, _bump)
        server.kill()
        # Each message says where, and what was being done (the service logs it).
        calls: list[tuple[Callable[[], object], str]] = [
            (store.ping, "answering PING"),
            (lambda: store.get(KEY), "reading stream 7:3"),
            # A write whose connection failed may have run (redis-py re-sends it once).
            (
                lambda: store.update(KEY, _bump),
                "updating stream 7:3 (the update may or may not have been stored)",
            ),
            (store.active_streams, "counting streams"),
            (lambda: store.delete(KEY), "deleting stream 7:3"),
            (store.clear, "clearing streams"),
        ]
        for call, action in calls:
            began = time.perf_counter()
            with pytest.raises(StoreUnavailable) as raised:
                call()
            assert time.perf_counter() - began < 0.5
            expected = f"Redis at {server.url} is unreachable while {action}: "
            assert str(raised.value).startswith(expected), raised.value
        server.restart()  # same port, empty (no persistence); same store object
        store.ping()
        assert store.get(KEY) is None
        assert store.update(KEY, _bump) == 1
        assert store.active_streams() == 1
        store.close()


def test_redis_hung_server_times_out_and_recovers() -> None:
    with RedisServer() as server:
        store = RedisTrackStore(server.url, prefix="hung", socket_timeout=0.2)
        store.update(KEY, _bump)
        server.pause()
        try:
            began = time.perf_counter()
            with pytest.raises(StoreUnavailable) as raised:
                store.ping()
            assert str(raised.value).startswith(
                f"Redis at {server.url} did not answer within 0.2 s while answering PING: "
            ), raised.value
            with pytest.raises(StoreUnavailable, match="did not answer"):
                store.update(KEY, _bump)
            assert time.perf_counter() - began < 2.0
        finally:
            server.resume()
        store.ping()
        assert store.update(KEY, _bump) == 2
        store.close()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@127.0.0.1:{port}/0", "redis://:***@127.0.0.1:{port}/0"),
        ("redis://alice:hunter2@127.0.0.1:{port}/0", "redis://alice:***@127.0.0.1:{port}/0"),
        ("redis://127.0.0.1:{port}/0", "redis://127.0.0.1:{port}/0"),
        # No host and no port in the URL: none are made up.
        ("unix://:hunter2@/nonexistent/redis.sock", "unix://:***@/nonexistent/redis.sock"),
    ],
)
def test_unavailable_message_hides_the_password(url: str, shown: str) -> None:
    port = free_port()
    store = RedisTrackStore(url.format(port=port))
    with pytest.raises(StoreUnavailable) as raised:
        store.ping()
    assert "hunter2" not in str(raised.value)
    expected = f"Redis at {shown.format(port=port)} is unreachable while answering PING: "
    assert str(raised.value).startswith(expected), raised.value
    store.close()


def _stat(admin: redis.Redis, section: str, name: str) -> int:
    """One counter of INFO (``INFO commandstats`` entries: their ``calls``)."""
    value = admin.info(section).get(name, 0)
    return int(value["calls"] if isinstance(value, dict) else value)


def _commands_until(
    admin: redis.Redis, run: Callable[[], object], last: Callable[[str], bool]
) -> list[str]:
    """The commands Redis runs during ``run()`` (MONITOR), up to the first ``last`` accepts."""
    seen: list[str] = []
    with admin.monitor() as monitor:  # type: ignore[no-untyped-call]
        run()
        while not seen or not last(seen[-1]):
            seen.append(monitor.next_command()["command"])
    return seen


@pytest.mark.parametrize(("ttl_seconds", "px"), [(2.5, "2500"), (0.0001, "1")])
def test_redis_ttl_is_kept_to_the_millisecond_and_at_least_one(
    redis_server: RedisServer, ttl_seconds: float, px: str
) -> None:
    # The expiry the commit script gives the stream key, as Redis runs it (MONITOR).
    store = _redis_store(redis_server.url, ttl_seconds=ttl_seconds)
    admin = redis.Redis.from_url(redis_server.url, socket_timeout=5.0, decode_responses=True)
    run = _commands_until(admin, lambda: store.update(KEY, _bump), lambda c: c.startswith("SET "))
    assert run[-1].split()[1] == f"{store.prefix}:stream:7:3"
    assert run[-1].split()[-2:] == ["PX", px]
    store.clear()
    store.close()
    admin.close()


def test_redis_clear_works_in_batches_of_1000(redis_server: RedisServer) -> None:
    # Bounded commands: one SCAN or DEL never holds up Redis for long.
    store = _redis_store(redis_server.url)
    admin = redis.Redis.from_url(redis_server.url, socket_timeout=5.0, decode_responses=True)
    names = {f"{store.prefix}:stream:{track}:0" for track in range(2_000)}
    with admin.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.set(name, "{}")
        pipe.execute()
    lru = f"{store.prefix}:streams"
    run = _commands_until(admin, store.clear, lambda c: c.startswith("DEL ") and c.endswith(lru))
    scans = [c.split()[2:] for c in run if c.startswith("SCAN ")]
    pattern = ["MATCH", f"{store.prefix}:stream:*", "COUNT", "1000"]
    assert scans and all(args == pattern for args in scans)
    deletes = [c.split()[1:] for c in run if c.startswith("DEL ")]
    *full, last = deletes
    assert full and all(len(batch) == 1000 for batch in full)
    assert len(last) <= 1001 and last[-1] == lru
    assert {name for batch in deletes for name in batch} == names | {lru}
    assert admin.keys(f"{store.prefix}:*") == []
    admin.close()


def test_redis_refusing_writes_after_a_failed_save_is_unavailable() -> None:
    # MISCONF (a snapshot could not be written): redis-py has no class for it, and inside a
    # transaction it reports it as "Command # 1 (...) of pipeline caused error: MISCONF ...";
    # from a script, as "MISCONF ... script: ...".
    with RedisServer() as server:
        store = RedisTrackStore(server.url, prefix="misconf")
        store.update(KEY, _bump)
        admin = redis.Redis.from_url(server.url, decode_responses=True)
        admin.config_set("save", "3600 1")
        shutil.rmtree(str(admin.config_get("dir")["dir"]))  # nowhere to write the snapshot
        admin.bgsave()

        def save_failed() -> bool:
            info = admin.info("persistence")
            return not info["rdb_bgsave_in_progress"] and info["rdb_last_bgsave_status"] == "err"

        _wait_until(save_failed, "the background save has failed")
        calls: list[tuple[Callable[[], object], str]] = [
            (store.ping, "answering PING"),
            (lambda: store.update(KEY, _bump), "updating stream 7:3"),  # in a script
            (lambda: store.delete(KEY), "deleting stream 7:3"),  # in MULTI / EXEC
            (store.active_streams, "counting streams"),
            (store.clear, "clearing streams"),
        ]
        for call, action in calls:
            with pytest.raises(StoreUnavailable) as raised:
                call()
            assert str(raised.value).startswith(f"Redis at {server.url} refused {action}: ")
            assert "MISCONF" in str(raised.value)
        assert _count(store, KEY) == 1  # reads still work; nothing was written
        admin.config_set("save", "")  # or shutting down would try to save once more, and fail
        admin.close()
        store.close()


def test_redis_a_broken_connection_is_retried_once_at_once() -> None:
    # Redis accepts the connection and closes it at once ("max number of clients reached"),
    # every time. redis-py applies the store's retry policy to the handshake and again to the
    # command: one retry is 2 x 2 connections (no retry would be 1, two retries 9), and without
    # pauses between them.
    with RedisServer() as server:
        admin = redis.Redis.from_url(server.url, decode_responses=True)
        admin.config_set("maxclients", 1)  # admin is that one client
        store = RedisTrackStore(server.url, prefix="full")
        before = _stat(admin, "stats", "rejected_connections")
        began = time.perf_counter()
        with pytest.raises(StoreUnavailable) as raised:
            store.ping()
        assert time.perf_counter() - began < 0.5
        assert str(raised.value) == (
            f"Redis at {server.url} is unreachable while answering PING: "
            "max number of clients reached"
        )
        assert _stat(admin, "stats", "rejected_connections") - before == 4
        admin.close()
        store.close()


def test_redis_a_timeout_is_not_retried(redis_server: RedisServer) -> None:
    # Retrying would cost another socket_timeout, on a new connection: none is opened.
    store = _redis_store(redis_server.url, socket_timeout=0.2)
    store.ping()  # the store's one pooled connection
    admin = redis.Redis.from_url(redis_server.url)
    before = _stat(admin, "stats", "total_connections_received")
    admin.client_pause(10_000, all=False)  # pauses writes only: INFO is still answered
    try:
        with pytest.raises(StoreUnavailable) as raised:
            store.delete(KEY)
        assert _stat(admin, "stats", "total_connections_received") == before
    finally:
        admin.client_unpause()
    assert str(raised.value).startswith(
        f"Redis at {redis_server.url} did not answer within 0.2 s while deleting stream 7:3: "
    ), raised.value
    admin.close()
    store.close()


def test_redis_connecting_gives_up_after_socket_timeout() -> None:
    # A listener whose backlog is full: the kernel ignores further connection attempts, like an
    # unreachable host. Connecting must give up after socket_timeout (redis-py's default is 5 s).
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener:
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):  # fills the backlog
            store = RedisTrackStore(f"redis://127.0.0.1:{port}/0", socket_timeout=0.2)
            began = time.perf_counter()
            with pytest.raises(StoreUnavailable) as raised:
                store.ping()
            assert time.perf_counter() - began < 2.0
            store.close()
    assert str(raised.value) == (
        f"Redis at redis://127.0.0.1:{port}/0 did not answer within 0.2 s while answering PING: "
        "Timeout connecting to server"
    )


class _EagerHealthCheck(RedisTrackStore):
    health_check_interval = 1


def test_redis_checks_an_idle_connection_before_using_it(redis_server: RedisServer) -> None:
    store = _EagerHealthCheck(redis_server.url, prefix=f"test-{uuid.uuid4().hex[:12]}")
    admin = redis.Redis.from_url(redis_server.url)
    store.update(KEY, _bump)
    before = _stat(admin, "commandstats", "cmdstat_ping")
    assert _count(store, KEY) == 1  # just used: no check
    assert _stat(admin, "commandstats", "cmdstat_ping") == before
    time.sleep(1.1)  # idle for longer than health_check_interval
    assert _count(store, KEY) == 1
    assert _stat(admin, "commandstats", "cmdstat_ping") == before + 1
    store.clear()
    store.close()
    admin.close()


class _CommitReplyDropper:
    """A TCP relay to Redis that can lose the reply to an update Redis has stored.

    Once armed, it passes the next EVALSHA (an update's commit) on; when Redis answers it (an
    array reply), it drops the answer and closes the client's connection: the client cannot
    tell whether its update was stored.
    """

    def __init__(self, upstream_port: int) -> None:
        self._upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.armed = threading.Event()
        self.dropped = threading.Event()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            if select.select([self._listener], [], [], 0.02)[0]:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self._upstream_port))
                relay = threading.Thread(target=self._relay, args=(client, upstream), daemon=True)
                self._threads.append(relay)
                relay.start()

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        sent, exec_sent = b"", False
        with client, upstream:
            while not self._stop.is_set():
                ready = select.select([client, upstream], [], [], 0.02)[0]
                if client in ready:
                    data = client.recv(65536)
                    if not data:
                        return
                    upstream.sendall(data)
                    if self.armed.is_set():
                        sent = sent[-16:] + data
                        exec_sent = exec_sent or b"\r\nEVALSHA\r\n" in sent
                if upstream in ready:
                    data = upstream.recv(65536)
                    if not data:
                        return
                    if exec_sent and b"*" in data:
                        self.armed.clear()
                        self.dropped.set()
                        return  # closing both connections loses the commit's reply
                    client.sendall(data)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._listener.close()


def test_redis_commit_whose_reply_was_lost_is_not_applied_twice(redis_server: RedisServer) -> None:
    relay = _CommitReplyDropper(redis_server.port)
    store = _redis_store(f"redis://127.0.0.1:{relay.port}/0")
    try:
        store.update(KEY, _bump)
        calls = 0

        def step(memory: StreamMemory | None) -> tuple[int, StreamMemory]:
            nonlocal calls
            calls += 1
            relay.armed.set()  # this commit happens, but the store is not told
            return _bump(memory)

        assert store.update(KEY, step) == 2
        assert relay.dropped.is_set()
        # The store saw its own value stored: running step again would count the point twice.
        assert calls == 1
        assert _count(store, KEY) == 2
    finally:
        store.clear()
        store.close()
        relay.close()


def test_redis_lost_commit_with_redis_gone_says_the_outcome_is_unknown() -> None:
    with RedisServer() as server:
        store = RedisTrackStore(server.url, prefix="gone")
        store.update(KEY, _bump)

        def step(memory: StreamMemory | None) -> tuple[int, StreamMemory]:
            server.kill()  # the commit's connection breaks, and nothing can check what happened
            return _bump(memory)

        with pytest.raises(StoreUnavailable) as raised:
            store.update(KEY, step)
        assert str(raised.value).startswith(
            f"Redis at {server.url} is unreachable while updating stream 7:3 "
            "(the update may or may not have been stored): "
        ), raised.value
        store.close()


def test_redis_backs_off_between_attempts_growing_to_a_cap(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _redis_store(redis_server.url)
    rival = RedisTrackStore(redis_server.url, prefix=store.prefix)
    store.max_attempts = 10
    ranges: list[tuple[float, float]] = []
    pauses: list[float] = []

    def longest(low: float, high: float) -> float:
        ranges.append((low, high))
        return high

    def step(memory: StreamMemory | None) -> tuple[int, StreamMemory]:
        rival.update(KEY, _bump)  # every attempt loses the race
        return _bump(memory)

    monkeypatch.setattr(random, "uniform", longest)
    monkeypatch.setattr(time, "sleep", pauses.append)
    with pytest.raises(StoreConflict):
        store.update(KEY, step)
    # Random pauses before each attempt after the first, from 0 up to 0.2 ms doubling per
    # attempt, capped at max_backoff (20 ms).
    assert [low for low, _ in ranges] == [0] * 9
    highs = [0.0004, 0.0008, 0.0016, 0.0032, 0.0064, 0.0128, 0.02, 0.02, 0.02]
    assert [high for _, high in ranges] == pytest.approx(highs)
    assert pauses == [high for _, high in ranges]
    store.clear()
    rival.close()
    store.close()


def test_redis_server_helper_restarts_on_the_same_port() -> None:
    server = RedisServer()
    with server:
        port, pid = server.port, server.pid
        assert server.running
        server.kill()
        assert not server.running
        server.restart()
        assert (server.port, server.running) == (port, True)
        assert server.pid != pid
    assert not server.running


def test_model_versions_do_not_share_streams(redis_server: RedisServer) -> None:
    # During a rolling upgrade two bundles serve at once: their stored rows are not compatible.
    old = create_store(redis_server.url, namespace="v1")
    new = create_store(redis_server.url, namespace="v2")
    again = create_store(redis_server.url, namespace="v1")
    try:
        old.update((5, 5), _set(_memory()))
        assert new.get((5, 5)) is None and again.get((5, 5)) is not None
    finally:
        for store in (old, new, again):
            store.clear()
            store.close()


def _commands(admin: redis.Redis) -> dict[str, int]:
    """Commands Redis has run so far, by name (INFO commandstats), INFO itself left out."""
    stats = admin.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(entry["calls"])
        for name, entry in stats.items()
        if name != "cmdstat_info"
    }


def _ran(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: n - before.get(name, 0) for name, n in after.items() if n != before.get(name, 0)}


def _updates(stored: int, refused: int = 0) -> dict[str, int]:
    """What Redis counts for update scripts that stored, or refused (a stale version).

    INFO commandstats counts the commands a script runs too; the client sent only the EVALSHAs,
    one round trip each.
    """
    commits = {"set": 1, "time": 1, "zrange": 1, "zadd": 1, "zremrangebyscore": 1, "zcard": 1}
    counts = {"evalsha": stored + refused, "get": stored + refused}
    counts.update({name: stored for name in commits} if stored else {})
    return counts


def test_redis_update_is_one_round_trip(redis_server: RedisServer) -> None:
    store = _redis_store(redis_server.url)
    admin = redis.Redis.from_url(redis_server.url)
    store.update(KEY, _bump)  # loads the script (NOSCRIPT, SCRIPT LOAD) once
    before = _commands(admin)
    for _ in range(50):
        store.update(KEY, _bump)
    assert _ran(before, _commands(admin)) == _updates(50)
    assert _count(store, KEY) == 51
    before = _commands(admin)
    store.update((8, 3), _bump)  # a new stream: also one
    assert _ran(before, _commands(admin)) == _updates(1)
    store.clear()
    admin.close()


def test_redis_a_stream_updated_elsewhere_costs_one_more_round_trip(
    redis_server: RedisServer,
) -> None:
    store = _redis_store(redis_server.url)
    other = RedisTrackStore(redis_server.url, prefix=store.prefix)  # another replica
    admin = redis.Redis.from_url(redis_server.url)
    store.update(KEY, _bump)
    other.update(KEY, _bump)  # never saw the stream: its guess "new" fails, then it commits
    before = _commands(admin)
    assert store.update(KEY, _bump) == 3  # its version is stale: answered the stream, then stored
    assert _ran(before, _commands(admin)) == _updates(1, refused=1)
    before = _commands(admin)
    assert store.update(KEY, _bump) == 4
    assert _ran(before, _commands(admin)) == _updates(1)
    store.clear()
    other.close()
    admin.close()


def test_redis_keeps_at_most_cache_streams_versions(redis_server: RedisServer) -> None:
    store = _redis_store(redis_server.url)
    store.cache_streams = 2
    admin = redis.Redis.from_url(redis_server.url)
    for track in (1, 2, 3):
        store.update((track, 0), _bump)
    costs = []
    for track in (3, 2, 1):  # 1, the least recent, was dropped: its guess "new" fails
        before = _commands(admin)
        store.update((track, 0), _bump)
        costs.append(_ran(before, _commands(admin))["evalsha"])  # round trips
    assert costs == [1, 1, 2]
    assert [_count(store, (t, 0)) for t in (1, 2, 3)] == [2, 2, 2]
    store.clear()
    admin.close()


def test_redis_a_stream_that_expired_and_started_again_is_not_taken_for_the_old_one(
    redis_server: RedisServer,
) -> None:
    store = _redis_store(redis_server.url)
    other = RedisTrackStore(redis_server.url, prefix=store.prefix)
    admin = redis.Redis.from_url(redis_server.url)
    old, new = _memory(4), _memory(7)
    store.update(KEY, _set(old))
    admin.delete(f"{store.prefix}:stream:7:3")  # expired
    other.update(KEY, _set(new))  # the stream starts again, elsewhere, as its first update
    seen: list[StreamMemory | None] = []

    def step(memory: StreamMemory | None) -> tuple[None, StreamMemory]:
        seen.append(memory)
        return None, _memory(9)

    store.update(KEY, step)
    # First from what this store last saw, refused; then from what the stream holds.
    assert len(seen) == 2
    assert seen[0] is not None and seen[0].count == old.count
    _assert_same(seen[1], new)
    _assert_same(store.get(KEY), _memory(9))
    store.clear()
    other.close()
    admin.close()


def test_redis_hands_out_copies_of_what_it_saw(redis_server: RedisServer) -> None:
    store = _redis_store(redis_server.url)
    store.update(KEY, _set(_memory(5)))

    def vandal(memory: StreamMemory | None) -> tuple[None, StreamMemory]:
        assert memory is not None
        memory.recent[:] = -1.0  # a step that scribbles on its input, then fails
        raise RuntimeError("step failed")

    with pytest.raises(RuntimeError):
        store.update(KEY, vandal)
    seen: list[StreamMemory | None] = []

    def record(memory: StreamMemory | None) -> tuple[None, StreamMemory]:
        seen.append(memory)
        return None, _memory(6)

    store.update(KEY, record)
    _assert_same(seen[0], _memory(5))
    store.clear()


def test_redis_delete_and_clear_forget_what_this_process_saw(redis_server: RedisServer) -> None:
    store = _redis_store(redis_server.url)
    admin = redis.Redis.from_url(redis_server.url)
    other = (8, 3)
    store.update(KEY, _bump)
    store.update(other, _bump)

    def round_trips(update: Callable[[], object]) -> int:
        before = _commands(admin)
        update()
        return _ran(before, _commands(admin))["evalsha"]

    store.delete(KEY)
    # Started again: guessed new, so one round trip; the other stream's version is still known.
    costs = [round_trips(lambda: store.update(KEY, _bump))]
    costs.append(round_trips(lambda: store.update(other, _bump)))
    store.clear()
    costs.append(round_trips(lambda: store.update(KEY, _bump)))
    assert costs == [1, 1, 1]
    store.clear()
    admin.close()


def test_redis_a_failed_commit_leaves_the_seen_version_right_either_way(
    redis_server: RedisServer,
) -> None:
    store = _redis_store(redis_server.url, socket_timeout=0.5)
    admin = redis.Redis.from_url(redis_server.url)
    store.update(KEY, _bump)
    admin.config_set("maxmemory", 1)  # refused: nothing stored
    try:
        with pytest.raises(StoreUnavailable):
            store.update(KEY, _bump)
    finally:
        admin.config_set("maxmemory", 0)
    before = _commands(admin)
    assert store.update(KEY, _bump) == 2  # what it saw is still the stream: one round trip
    assert _ran(before, _commands(admin))["evalsha"] == 1
    store.clear()
    admin.close()
