"""The minimum upload rate (app/server/rate.py) and the connection settings, in-process."""

import asyncio
import time

import pytest

from app.cli.main import server_config
from app.config import Config, ConfigError
from app.ingest.pipeline import IngestError
from app.server import rate
from app.server.limits import connections_for, per_address_for, raise_open_file_limit
from app.server.rate import RateFloor, RateWindow, at_least

FLOOR = RateFloor(rate=1000, window=5, grace=2)


def test_nothing_is_judged_during_the_grace_period():
    window = RateWindow(FLOOR, now=0)
    assert not window.too_slow(1, 0)
    assert not window.too_slow(1.99, 0)
    assert window.too_slow(2, 0)


def test_the_average_since_the_start_counts_while_younger_than_the_window():
    window = RateWindow(FLOOR, now=0)
    assert not window.too_slow(1, 3000)  # a fast start carries the first seconds
    assert not window.too_slow(3, 3000)
    assert window.too_slow(4, 3000)  # 3000 bytes in 4 s is under 1000/s


def test_a_fast_start_does_not_excuse_a_crawl_later():
    window = RateWindow(FLOOR, now=0)
    received = 0
    for second in range(1, 11):  # 10 s at 100 KB/s
        received += 100_000
        assert not window.too_slow(second, received)
    crawled = [window.too_slow(second, received + second) for second in range(11, 20)]
    # The last 5 s hold only the crawl once the fast seconds have left the window.
    assert crawled.index(True) == 4  # judged at 15 s, exactly one window after the crawl began


async def _chunks(pause: float, count: int, size: int = 1):
    for _ in range(count):
        await asyncio.sleep(pause)
        yield b"x" * size


@pytest.fixture
def quick_checks(monkeypatch):
    monkeypatch.setattr(rate, "CHECK_EVERY_SECONDS", 0.05)


async def test_a_crawling_body_ends_with_408_while_waiting_for_its_next_chunk(quick_checks):
    floor = RateFloor(rate=1000, window=0.3, grace=0.2)
    started = time.monotonic()
    received = 0
    with pytest.raises(IngestError) as refused:
        async for chunk in at_least(floor, _chunks(pause=5, count=3)):
            received += len(chunk)
    assert refused.value.status == 408
    assert "too slow: under 1000 bytes/s over 0.3 seconds" in refused.value.message
    assert received == 0
    assert time.monotonic() - started < 1  # not the 5 s the next chunk would take
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # our cancel was taken back


async def test_a_body_judged_while_its_reader_is_busy_ends_at_the_next_read(quick_checks):
    floor = RateFloor(rate=1000, window=0.3, grace=0.2)
    with pytest.raises(IngestError):
        async for _ in at_least(floor, _chunks(pause=0, count=100)):
            await asyncio.sleep(0.5)  # e.g. disk work: a cancel here would fail the test


async def test_a_steady_body_passes_and_a_floor_of_zero_is_off(quick_checks):
    floor = RateFloor(rate=1000, window=0.3, grace=0.2)
    got = [c async for c in at_least(floor, _chunks(pause=0.02, count=30, size=100))]
    assert len(got) == 30  # 5000 bytes/s
    off = RateFloor(rate=0, window=0.3, grace=0.2)
    assert len([c async for c in at_least(off, _chunks(pause=0.1, count=5))]) == 5


async def test_someone_elses_cancel_stays_a_cancel(quick_checks):
    floor = RateFloor(rate=1000, window=0.3, grace=0.2)

    async def read() -> None:
        async for _ in at_least(floor, _chunks(pause=5, count=1)):
            pass

    task = asyncio.create_task(read())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_connection_settings_and_their_defaults():
    config = Config.load({}, environ={})
    assert config.min_upload_rate == 10 * 1024
    assert (config.min_upload_rate_window, config.min_upload_rate_grace) == (30, 10)
    assert config.max_connections is None  # derived from the open-file limit
    assert config.max_connections_per_address is None  # an eighth of max_connections
    assert config.shutdown_timeout == 30
    stario = server_config(config, max_connections=480)
    assert (stario.max_connections, stario.graceful_shutdown_timeout) == (480, 30)
    chosen = Config.load(
        {"min_upload_rate": "off", "max_connections": "100",
         "max_connections_per_address": "none", "shutdown_timeout": "2.5"},
        environ={},
    )  # fmt: skip
    assert chosen.min_upload_rate == 0
    assert chosen.max_connections_per_address == 0  # no limit
    assert server_config(chosen, max_connections=480).max_connections == 100
    assert server_config(chosen).graceful_shutdown_timeout == 2.5
    with pytest.raises(ConfigError, match="--min-upload-rate must be a number of bytes"):
        Config.load({"min_upload_rate": "fast"}, environ={})
    with pytest.raises(ConfigError, match="--max-connections-per-address must be between"):
        Config.load({"max_connections_per_address": "-1"}, environ={})


def test_open_file_limit_and_the_connections_it_allows():
    soft, hard = raise_open_file_limit()
    assert soft == hard or hard == -1 or soft >= 1_048_576
    assert connections_for(1024) == 480  # two descriptors each, 64 kept aside
    assert connections_for(10) == 1
    assert (per_address_for(480), per_address_for(9968), per_address_for(20)) == (60, 1246, 8)


async def test_a_form_that_crawls_is_refused_after_form_seconds(monkeypatch):
    """Sign-in and token forms are read whole by the handler: a deadline, not a rate."""
    from types import SimpleNamespace

    from app.common import forms as auth

    monkeypatch.setattr(auth, "FORM_SECONDS", 0.2)

    async def crawling_body(max_size: int) -> bytes:
        await asyncio.sleep(60)  # a byte every few seconds, never finished
        return b""

    request = SimpleNamespace(headers={"content-type": "application/json"}, body=crawling_body)
    started = time.monotonic()
    with pytest.raises(auth.FormError, match="the form took more than 0.2 seconds to arrive"):
        await auth.read_form(SimpleNamespace(req=request))  # type: ignore[arg-type]
    assert time.monotonic() - started < 2
