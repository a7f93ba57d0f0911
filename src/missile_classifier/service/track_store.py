"""Per-stream state for the service: the track store.

The service appends each observation that carries a ``track_id`` to its stream's history. All a
stream's next point needs is a :class:`~missile_classifier.scoring.windows.StreamMemory` (O(1)
in the stream's length), so that is what a store keeps, keyed by ``(track_id, sensor_id)``.

Two implementations behind one interface:

- :class:`MemoryTrackStore`: a dict in one process (the service then runs one worker, with threads).
- :class:`RedisTrackStore`: shared by every worker and replica (``REDIS_URL``).

Both keep a stream for ``ttl_seconds`` after its last update and at most ``max_streams`` streams,
evicting the least recently updated, so abandoned tracks cannot exhaust memory. Updates are atomic
per stream: concurrent points of one stream are applied one after the other, never lost.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import re
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import ClassVar, Self, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.exceptions import (
    ClusterDownError,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.retry import Retry

from missile_classifier.scoring.windows import StreamMemory

T = TypeVar("T")
_log = logging.getLogger(__name__)

#: A stream's key: ``(track_id, sensor_id)``.
StreamKey = tuple[int, int]
#: What :meth:`TrackStore.update` calls: old memory (or ``None``) → (result, new memory).
Step = Callable[[StreamMemory | None], tuple[T, StreamMemory]]


class StoreUnavailable(RuntimeError):  # noqa: N818 (the service's name for it)
    """The shared store cannot be used right now (the message says why); retry later."""


class StoreConflict(StoreUnavailable):
    """Too many concurrent updates of one stream: the update gave up without storing anything.

    A subclass of :class:`StoreUnavailable` because the answer is the same (try again later).
    """


def _normalize(key: tuple[int, int]) -> StreamKey:
    """Plain ints, so NumPy integers and ints name the same stream."""
    return int(key[0]), int(key[1])


def _copy(memory: StreamMemory) -> StreamMemory:
    """An independent copy, so a caller cannot change what the store holds."""
    return StreamMemory(dataclasses.replace(memory.state), memory.recent.copy(), memory.count)


class TrackStore(ABC):
    """Per-stream :class:`StreamMemory` with a TTL, an LRU cap and atomic updates.

    Attributes:
        kind: ``"memory"`` or ``"redis"`` (reported by ``/health`` and ``/info``).
        ttl_seconds: A stream is forgotten this long after its last update.
        max_streams: At most this many streams are kept; beyond it the least recently updated
            ones are evicted.
    """

    kind: ClassVar[str]
    ttl_seconds: float
    max_streams: int

    @abstractmethod
    def update(self, key: tuple[int, int], step: Step[T]) -> T:
        """Atomically read a stream's memory, compute its successor and store it.

        Reads the stream's memory (``None`` if new or expired), calls ``step(memory)``, stores
        the returned memory (refreshing its TTL and LRU position, evicting the least recently
        updated streams beyond ``max_streams``) and returns step's first value. Concurrent
        updates of one stream (threads, processes, replicas) never lose an update.

        ``step`` may be called more than once (the Redis store re-runs it when another update of
        the same stream won the race), so it must have no side effects beyond its return value.
        The store owns the memory ``step`` returns: do not change it afterwards.

        Args:
            key: ``(track_id, sensor_id)``.
            step: Old memory → (result, new memory).

        Returns:
            The first value ``step`` returned.

        Raises:
            StoreUnavailable: The store cannot be reached; nothing was stored (or, if the
                connection broke during the commit, the message says the outcome is unknown).
            StoreConflict: The update kept losing races with other updates of the stream.
            Exception: Whatever ``step`` raised, unchanged; nothing was stored.
        """

    @abstractmethod
    def get(self, key: tuple[int, int]) -> StreamMemory | None:
        """The stream's memory, or ``None`` if unknown or expired (does not refresh it)."""

    @abstractmethod
    def delete(self, key: tuple[int, int]) -> bool:
        """Forget a stream; ``True`` if it was held."""

    @abstractmethod
    def active_streams(self) -> int:
        """Streams currently held (expired ones not counted)."""

    @abstractmethod
    def ping(self) -> None:
        """Check the store is usable, cheaply (``/health`` calls it).

        Raises:
            StoreUnavailable: With the reason.
        """

    @abstractmethod
    def clear(self) -> None:
        """Forget every stream."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store is not used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _check_limits(ttl_seconds: float, max_streams: int) -> None:
    if not ttl_seconds > 0:
        raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
    if max_streams < 1:
        raise ValueError(f"max_streams must be at least 1, got {max_streams}")


@dataclasses.dataclass
class _Entry:
    memory: StreamMemory
    updated: float


@dataclasses.dataclass
class _KeyLock:
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    users: int = 0


class MemoryTrackStore(TrackStore):
    """Streams in this process's memory: for a single service worker (with threads).

    One lock per stream serialises updates of that stream while other streams proceed; a short
    global lock guards the dict. Entries are ordered by last update, which is both the LRU order
    and the expiry order, so expired entries are dropped from the front (lazily: on access and
    when counting).

    Args:
        ttl_seconds: Forget a stream this long after its last update.
        max_streams: Keep at most this many streams.
        clock: Seconds, non-decreasing (injectable for tests).
    """

    kind = "memory"

    def __init__(
        self,
        ttl_seconds: float = 3600.0,
        max_streams: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        _check_limits(ttl_seconds, max_streams)
        self.ttl_seconds = ttl_seconds
        self.max_streams = max_streams
        self.clock = clock
        self._entries: OrderedDict[StreamKey, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[StreamKey, _KeyLock] = {}

    @contextmanager
    def _stream_lock(self, key: StreamKey) -> Iterator[None]:
        """Hold the stream's own lock; the lock lives only while someone uses it."""
        with self._lock:
            key_lock = self._key_locks.setdefault(key, _KeyLock())
            key_lock.users += 1
        try:
            with key_lock.lock:
                yield
        finally:
            with self._lock:
                key_lock.users -= 1
                if key_lock.users == 0:
                    del self._key_locks[key]

    def _live(self, key: StreamKey, now: float) -> _Entry | None:
        """The stream's entry, dropping it if expired (call with ``_lock`` held)."""
        entry = self._entries.get(key)
        if entry is not None and now - entry.updated >= self.ttl_seconds:
            del self._entries[key]
            return None
        return entry

    def _drop_expired(self, now: float) -> None:
        """Drop expired entries: they are the oldest, at the front (call with ``_lock`` held)."""
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if now - entry.updated < self.ttl_seconds:
                return
            del self._entries[key]

    def update(self, key: tuple[int, int], step: Step[T]) -> T:
        key = _normalize(key)
        with self._stream_lock(key):
            with self._lock:
                entry = self._live(key, self.clock())
            # The stream lock alone keeps other updates of this stream out while step runs.
            result, memory = step(None if entry is None else _copy(entry.memory))
            with self._lock:
                now = self.clock()
                self._entries[key] = _Entry(memory, now)
                self._entries.move_to_end(key)
                self._drop_expired(now)
                while len(self._entries) > self.max_streams:
                    self._entries.popitem(last=False)
        return result

    def get(self, key: tuple[int, int]) -> StreamMemory | None:
        with self._lock:
            entry = self._live(_normalize(key), self.clock())
            return None if entry is None else _copy(entry.memory)

    def delete(self, key: tuple[int, int]) -> bool:
        key = _normalize(key)
        with self._stream_lock(key), self._lock:
            if self._live(key, self.clock()) is None:
                return False
            del self._entries[key]
            return True

    def active_streams(self) -> int:
        with self._lock:
            self._drop_expired(self.clock())
            return len(self._entries)

    def ping(self) -> None:
        """Always usable: it is this process's memory."""

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def close(self) -> None:
        self.clear()


# One script per update, so a prediction costs one round trip. It is a compare-and-set: the
# value is stored only if the stream still holds the version the caller computed from (a random
# token, so a stream that expired and started again cannot pass for the old one); otherwise it
# answers what the stream holds, and the caller computes again from that. Lua runs atomically in
# Redis, so the LRU bookkeeping cannot interleave with another replica's. It uses the server's
# clock (TIME), so replicas with skewed clocks agree on ages. Scores are microseconds (exact in a
# double); a score never repeats, so ties cannot reorder.
# KEYS: stream key, LRU sorted set.
# ARGV: expected version ("" absent, "?" a value without one), value, TTL ms, member, max
# streams, stream key prefix.
_UPDATE_LUA = """
local held = redis.call('GET', KEYS[1])
local version = ''
if held then
    version = string.match(held, '^(%x+)|') or '?'
end
if version ~= ARGV[1] then
    return {0, held}
end
local ttl_ms = tonumber(ARGV[3])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl_ms)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local score = now
local newest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if newest[2] ~= nil and tonumber(newest[2]) >= score then
    score = tonumber(newest[2]) + 1
end
redis.call('ZADD', KEYS[2], score, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl_ms * 1000)
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if excess > 0 then
    local victims = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
    for _, member in ipairs(victims) do
        redis.call('DEL', ARGV[6] .. member)
    end
    redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
end
return {1, excess}
"""
#: A stored value: ``{version}|{JSON of the memory}`` (the version as the script reads it).
_VERSIONED = re.compile(rb"^([0-9A-Fa-f]+)\|")

# KEYS: LRU sorted set. ARGV: TTL ms. Members whose stream key has expired are dropped first.
_COUNT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]) * 1000)
return redis.call('ZCARD', KEYS[1])
"""

#: Errors Redis answers with when it is up but cannot serve us (read-only replica, out of
#: memory, ACL, cluster trouble): for the service, as unusable as an unreachable server.
_REFUSALS = (ReadOnlyError, OutOfMemoryError, NoPermissionError, ClusterDownError, TryAgainError)
#: Response-error prefixes with the same meaning that redis-py has no class for.
_REFUSAL_PREFIXES = ("MISCONF", "LOADING", "MASTERDOWN")
#: What redis-py puts between "Command # 1 (DEL ...)" and Redis's error in a pipeline (MULTI/EXEC).
_PIPELINE_ERROR = " of pipeline caused error: "


def _redact(url: str) -> str:
    """The URL without its password, fit for error messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def _is_refusal(error: redis.exceptions.RedisError) -> bool:
    if isinstance(error, _REFUSALS):
        return True
    # Inside a transaction the error Redis sent comes after redis-py's note of the command.
    head, annotated, reply = str(error).partition(_PIPELINE_ERROR)
    said = reply if annotated else head
    return isinstance(error, ResponseError) and said.startswith(_REFUSAL_PREFIXES)


class RedisTrackStore(TrackStore):
    """Streams in Redis, shared by every worker and replica of the service.

    A stream's memory is stored under ``{prefix}:stream:{track_id}:{sensor_id}`` as
    ``{version}|{JSON of StreamMemory.to_dict}``, with a Redis expiry of ``ttl_seconds``; the
    version is a random token that changes with every update. The sorted set
    ``{prefix}:streams`` holds every stream's last-update time (server clock) for the LRU cap
    across replicas and for counting.

    An update is one round trip in the usual case: this process keeps the version and memory it
    last saw of each stream (at most :attr:`cache_streams` of them), runs ``step`` on that, and
    sends the result in a compare-and-set script that stores it only if the stream still holds
    that version. A client's points usually reach the same worker (one keep-alive connection),
    so it usually does. If another worker or replica updated the stream meanwhile (or it expired,
    or this process never saw it), the script answers what the stream holds instead and the
    update runs again on that: two round trips. Repeated losses start over a bounded number of
    times with jittered backoff.

    Connection failures, timeouts and refusals become :class:`StoreUnavailable`, quickly (one
    immediate reconnect attempt, then ``socket_timeout`` at most per call); the client reconnects
    by itself when Redis is back. Creating the store does not connect: :meth:`ping` checks.

    Args:
        url: ``redis://[:password@]host:port/db`` (or ``rediss://``, ``unix://``).
        ttl_seconds: Forget a stream this long after its last update (millisecond precision).
        max_streams: Keep at most this many streams across all replicas.
        prefix: Namespace of this store's keys (several deployments can share a Redis).
        socket_timeout: Seconds to wait for Redis to connect or answer before giving up.
    """

    kind = "redis"
    #: Attempts of one update before :class:`StoreConflict` (each after losing a race).
    max_attempts: int = 100
    #: Longest pause between attempts, seconds (the pause is random, growing to this).
    max_backoff: float = 0.02
    #: Seconds a pooled connection may idle before it is checked with a PING before use.
    health_check_interval: ClassVar[int] = 30
    #: Streams whose last seen version and memory this process keeps (least recent dropped):
    #: about 2 KB each. A stream not kept costs one more round trip on its next update.
    cache_streams: int = 10_000

    def __init__(
        self,
        url: str,
        ttl_seconds: float = 3600.0,
        max_streams: int = 100_000,
        prefix: str = "missile-classifier",
        socket_timeout: float = 1.0,
    ) -> None:
        _check_limits(ttl_seconds, max_streams)
        self.url = url
        self.ttl_seconds = ttl_seconds
        self.max_streams = max_streams
        self.prefix = prefix
        self.socket_timeout = socket_timeout
        self._ttl_ms = max(1, round(ttl_seconds * 1000))
        self._stream_prefix = f"{prefix}:stream:"
        self._lru_key = f"{prefix}:streams"
        # One immediate retry on a broken connection (a pooled connection from before a Redis
        # restart); none on timeouts, so an unresponsive Redis costs one socket_timeout.
        retry = Retry(NoBackoff(), retries=1, supported_errors=(redis.exceptions.ConnectionError,))
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            health_check_interval=self.health_check_interval,
            retry=retry,
        )
        self._update_script = self._client.register_script(_UPDATE_LUA)
        self._count_script = self._client.register_script(_COUNT_LUA)
        self._seen: OrderedDict[str, tuple[str, StreamMemory]] = OrderedDict()
        self._seen_lock = threading.Lock()

    def _key(self, key: StreamKey) -> tuple[str, str]:
        """Redis key and LRU member of a stream."""
        member = f"{key[0]}:{key[1]}"
        return self._stream_prefix + member, member

    @contextmanager
    def _available(self, action: str, *, writing: bool = False) -> Iterator[None]:
        """Turn Redis being unreachable or refusing into :class:`StoreUnavailable`.

        With ``writing``, a timeout or a broken connection leaves the outcome unknown (the
        command may have run, and redis-py re-sends it once on a new connection), and the
        message says so. A refusal is Redis's answer: nothing was written.
        """
        unknown = "the update may or may not have been stored"
        try:
            yield
        except redis.exceptions.TimeoutError as error:
            if writing:
                raise StoreUnavailable(
                    f"Redis at {_redact(self.url)} did not answer in time while {action}; "
                    f"{unknown}: {error}"
                ) from error
            raise StoreUnavailable(
                f"Redis at {_redact(self.url)} did not answer within {self.socket_timeout} s "
                f"while {action}: {error}"
            ) from error
        except redis.exceptions.ConnectionError as error:
            doing = f"{action} ({unknown})" if writing else action
            raise StoreUnavailable(
                f"Redis at {_redact(self.url)} is unreachable while {doing}: {error}"
            ) from error
        except redis.exceptions.RedisError as error:
            if not _is_refusal(error):
                raise
            raise StoreUnavailable(
                f"Redis at {_redact(self.url)} refused {action}: {error}"
            ) from error

    def _decode(self, raw: bytes | None, member: str) -> tuple[str, StreamMemory | None]:
        """A stored value's version and memory: ``("", None)`` if absent.

        A memory this version cannot read (written by an incompatible version during a rolling
        upgrade, or damaged) is treated like an expired stream: the stream starts afresh, which
        clients must handle anyway, instead of failing every later point of the stream.
        """
        if raw is None:
            return "", None
        versioned = _VERSIONED.match(raw)
        version = versioned.group(1).decode() if versioned else "?"
        payload = raw[versioned.end() :] if versioned else raw
        try:
            return version, StreamMemory.from_dict(json.loads(payload))
        except (ValueError, KeyError, TypeError) as error:
            _log.warning(
                "stream %s in %s is unreadable, starting it afresh: %r", member, self.prefix, error
            )
            return version, None

    def _remember(self, member: str, version: str, memory: StreamMemory) -> None:
        with self._seen_lock:
            self._seen[member] = (version, memory)
            self._seen.move_to_end(member)
            while len(self._seen) > self.cache_streams:
                self._seen.popitem(last=False)

    def _forget(self, member: str | None = None) -> None:
        with self._seen_lock:
            if member is None:
                self._seen.clear()
            else:
                self._seen.pop(member, None)

    def update(self, key: tuple[int, int], step: Step[T]) -> T:
        name, member = self._key(_normalize(key))
        action = f"updating stream {member}"
        with self._seen_lock:
            seen = self._seen.get(member)
        # Not seen: guess it is new (one round trip if so, two if not).
        version, memory = seen if seen is not None else ("", None)
        for attempt in range(self.max_attempts):
            if attempt:
                # Jittered, growing pauses spread out writers that keep colliding.
                time.sleep(random.uniform(0, min(self.max_backoff, 0.0002 * 2**attempt)))
            result, new_memory = step(None if memory is None else _copy(memory))
            token = os.urandom(8).hex()
            value = f"{token}|{json.dumps(new_memory.to_dict())}".encode()
            args: list[str | bytes | int] = [
                version,
                value,
                self._ttl_ms,
                member,
                self.max_streams,
                self._stream_prefix,
            ]
            # A failure leaves what this process saw as it was: right if nothing was stored,
            # and if something was, the next update's version is refused and reads it.
            with self._available(action, writing=True):
                stored, held = self._update_script(keys=[name, self._lru_key], args=args)
            # A lost reply to a commit that happened, retried on a new connection, finds our
            # own version: stored all the same (running step again would apply it twice).
            if stored or held == value:
                self._remember(member, token, new_memory)
                return result
            version, memory = self._decode(held, member)
        raise StoreConflict(
            f"gave up {action} after {self.max_attempts} attempts: other updates of the same "
            "stream kept committing first"
        )

    def get(self, key: tuple[int, int]) -> StreamMemory | None:
        name, member = self._key(_normalize(key))
        with self._available(f"reading stream {member}"):
            raw = self._client.get(name)
        return self._decode(cast(bytes | None, raw), member)[1]

    def delete(self, key: tuple[int, int]) -> bool:
        name, member = self._key(_normalize(key))
        self._forget(member)
        with self._available(f"deleting stream {member}"), self._client.pipeline() as pipe:
            pipe.delete(name)
            pipe.zrem(self._lru_key, member)
            deleted, _ = pipe.execute()
        return bool(deleted)

    def active_streams(self) -> int:
        with self._available("counting streams"):
            count = self._count_script(keys=[self._lru_key], args=[self._ttl_ms])
        return int(count)

    def ping(self) -> None:
        with self._available("answering PING"):
            self._client.ping()

    def clear(self) -> None:
        self._forget()
        pattern = _glob_escape(self._stream_prefix) + "*"
        with self._available("clearing streams"):
            batch: list[bytes] = []
            for name in self._client.scan_iter(match=pattern, count=1000):
                batch.append(name)
                if len(batch) >= 1000:
                    self._client.delete(*batch)
                    batch.clear()
            self._client.delete(*batch, self._lru_key)

    def close(self) -> None:
        self._forget()
        self._client.close()


def _glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis glob pattern (SCAN MATCH)."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def create_store(
    redis_url: str | None,
    ttl_seconds: float = 3600.0,
    max_streams: int = 100_000,
    namespace: str | None = None,
) -> TrackStore:
    """The store the service's configuration asks for: Redis if a URL is given, else memory.

    Args:
        redis_url: ``REDIS_URL``; empty or ``None`` means in-process memory.
        ttl_seconds: Forget a stream this long after its last update.
        max_streams: Keep at most this many streams.
        namespace: Appended to the Redis key prefix. The service passes the model version:
            a stream's stored rows are scaled for one bundle, so replicas serving different
            bundles during a rolling upgrade must not read each other's streams.
    """
    if redis_url:
        prefix = "missile-classifier" + (f":{namespace}" if namespace else "")
        return RedisTrackStore(
            redis_url, ttl_seconds=ttl_seconds, max_streams=max_streams, prefix=prefix
        )
    return MemoryTrackStore(ttl_seconds=ttl_seconds, max_streams=max_streams)
