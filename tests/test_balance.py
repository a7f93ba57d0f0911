"""The workers' shared connection table: who may accept the next connection."""

from __future__ import annotations

import os
import time

import pytest

from missile_classifier.service import balance
from missile_classifier.service.balance import SLACK, STALE_S, ConnectionTable


def test_the_least_loaded_worker_always_accepts_and_others_wait_beyond_the_slack() -> None:
    table = ConnectionTable(4)
    a, b = table.claim(101), table.claim(102)
    assert a == 0 and b == 1
    table.publish(a, 101, 5)
    table.publish(b, 102, 5 - SLACK)
    assert table.may_accept(b, 5 - SLACK)  # the least loaded
    assert not table.may_accept(a, 5)  # would hold SLACK + 1 more than b
    table.publish(a, 101, 5 - SLACK)
    assert table.may_accept(a, 5 - SLACK) and table.may_accept(b, 5 - SLACK)  # a tie: both


def test_a_worker_alone_accepts_whatever_it_holds() -> None:
    table = ConnectionTable(2)
    slot = table.claim(7)
    assert slot is not None
    table.publish(slot, 7, 1_000)
    assert table.may_accept(slot, 1_000)


def test_a_silent_worker_does_not_count(monkeypatch: pytest.MonkeyPatch) -> None:
    table = ConnectionTable(2)
    busy, hung = table.claim(1), table.claim(2)
    assert busy is not None and hung is not None
    table.publish(busy, 1, 10)
    table.publish(hung, 2, 0)
    assert not table.may_accept(busy, 10)
    later = time.monotonic() + STALE_S + 0.1
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert table.may_accept(busy, 10)  # the other has not beaten for STALE_S: ignored


def test_slots_are_claimed_once_and_freed_by_pid() -> None:
    table = ConnectionTable(2)
    assert [table.claim(1), table.claim(2), table.claim(3)] == [0, 1, None]
    table.publish(1, 2, 9)
    table.release(2)
    assert table.claim(3) == 1  # the freed slot, with its count cleared
    table.publish(0, 1, 0)
    assert table.may_accept(0, 0)


def test_the_table_is_shared_with_forked_processes() -> None:
    table = ConnectionTable(2)
    mine, theirs = table.claim(os.getpid()), table.claim(0x7FFF_0000)
    assert mine is not None and theirs is not None
    child = os.fork()
    if child == 0:  # the child publishes what it holds, as a worker does
        table.publish(theirs, 0x7FFF_0000, 0)
        os._exit(0)
    os.waitpid(child, 0)
    table.publish(mine, os.getpid(), SLACK)
    assert not table.may_accept(mine, SLACK)  # it sees the child's 0


def test_share_sizes_the_table_beyond_the_worker_count() -> None:
    before = balance.TABLE
    try:
        balance.share(3)
        assert balance.TABLE is not None and balance.TABLE.slots == 10
    finally:
        balance.TABLE = before
