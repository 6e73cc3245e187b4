"""One account's live pages share their repaints (app/common/livefeeds.py): a change is
rendered once per view, not once per stream; a burst of changes is one repaint; and an
account holds at most `max_live_pages_per_account` streams."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import replace

import pytest
from stario.markup.render import render as render_markup
from tests.support.fixtures import signed_in_client

import app.features.home.handlers as home_handlers
from app.config import Config
from app.features.home.filelist import files_part, list_changes, list_pieces
from app.features.home.listing import PAGE_SIZE, Listing
from app.features.home.urls import HOME, HOME_LIVE
from app.files.query import EVERY_FILE
from app.files.store import FileRow

IDENTITY = {"accept-encoding": "identity"}


async def upload(client, name: str) -> None:
    r = await client.put(f"/uploads/{name}", content=b"x")
    assert r.status_code == 201, r.text


async def next_data(events: AsyncIterator[dict[str, str]], *, containing: str) -> str:
    async with asyncio.timeout(10):
        while True:
            event = await anext(events)
            if containing in event["data"]:
                return event["data"]


def count_calls(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """How often `app.features.home.handlers.<name>` runs from now on (a list of one)."""
    count = [0]
    real = getattr(home_handlers, name)

    def counted(*args, **kwargs):
        count[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(home_handlers, name, counted)
    return count


def searching(q: str) -> dict[str, str]:
    """The stream's query as the page sends it: the `list*` signals."""
    signals = {"listQ": q, "listType": "", "listSort": "created-desc", "listPage": 1}
    return {"datastar": json.dumps(signals)}


async def open_streams(stack: AsyncExitStack, client, params: list[dict[str, str]]):
    """A stream per entry of `params`, each read up to its first paint of the list."""
    streams = []
    for query in params:
        live = await stack.enter_async_context(
            client.stream("GET", HOME_LIVE.href(), params=query, headers=IDENTITY)
        )
        events = live.iter_events()
        await next_data(events, containing='id="files"')
        streams.append(events)
    return streams


async def test_a_change_is_rendered_once_per_view_not_once_per_stream(config, monkeypatch):
    async with signed_in_client(config) as client, AsyncExitStack() as stack:
        # Six tabs: four on the whole list, two searching for "report".
        streams = await open_streams(stack, client, [{}] * 4 + [searching("report")] * 2)
        lists = count_calls(monkeypatch, "paint_list")
        places = count_calls(monkeypatch, "move_targets")
        await upload(client, "report.txt")
        for events in streams:
            assert "report.txt" in await next_data(events, containing='id="files"')
            await next_data(events, containing='id="move-to"')
        # One render per view (two views), and the folders to move to once for the account.
        assert lists[0] == 2
        assert places[0] == 1


async def test_changes_close_together_make_one_repaint(config, monkeypatch):
    # A wide window, so a loaded machine still puts the uploads inside it.
    monkeypatch.setattr("app.common.livefeeds.COALESCE_SECONDS", 2.0)
    async with signed_in_client(config) as client, AsyncExitStack() as stack:
        [events] = await open_streams(stack, client, [{}])
        lists = count_calls(monkeypatch, "paint_list")
        names = [f"burst-{i}.txt" for i in range(5)]
        for name in names:
            await upload(client, name)
            await asyncio.sleep(0.1)  # apart: each would be a repaint of its own
        painted = await next_data(events, containing='id="files"')
        if not all(name in painted for name in names):
            # The window closed before the last ones (a very slow machine): one more.
            painted = await next_data(events, containing='id="files"')
        assert all(name in painted for name in names)
        assert lists[0] <= 2


async def test_one_stream_more_than_the_cap_ends_the_oldest_with_a_notice(config: Config):
    config = replace(config, max_live_pages_per_account=2)
    async with signed_in_client(config) as client, AsyncExitStack() as stack:
        oldest, second = await open_streams(stack, client, [{}, {}])
        [newest] = await open_streams(stack, client, [{}])
        # The oldest is told why, and that it will not reconnect, then ends.
        ended = await next_data(oldest, containing="listEnded")
        assert '"listEnded":true' in ended
        notice = await next_data(oldest, containing="live-ended")
        assert "more than 2 live pages open" in notice and "Reload" in notice
        assert "selector #home" in notice and "mode prepend" in notice
        with pytest.raises(StopAsyncIteration):
            async with asyncio.timeout(10):
                await anext(oldest)
        # The two others still repaint.
        await upload(client, "after.txt")
        for events in (second, newest):
            await next_data(events, containing="after.txt")
        # The ended page's reconnect carries `listEnded`: 204, which ends Datastar's
        # retries (and closes nothing else).
        ended_signals = {"listQ": "", "listPage": 1, "listEnded": True}
        r = await client.get(HOME_LIVE.href(), params={"datastar": json.dumps(ended_signals)})
        assert r.status_code == 204
        await upload(client, "still.txt")
        for events in (second, newest):
            await next_data(events, containing="still.txt")


async def test_the_page_starts_with_its_stream_not_ended(client):
    page = (await client.get(HOME.href())).text
    assert "listEnded" in page and "!$listEnded" in page


def test_the_cap_is_a_setting_with_a_default_of_20():
    assert Config.load({}, environ={}).max_live_pages_per_account == 20
    loaded = Config.load({}, environ={"STOWAGE_MAX_LIVE_PAGES_PER_ACCOUNT": "5"})
    assert loaded.max_live_pages_per_account == 5
    with pytest.raises(ValueError, match="STOWAGE_MAX_LIVE_PAGES_PER_ACCOUNT"):
        Config.load({}, environ={"STOWAGE_MAX_LIVE_PAGES_PER_ACCOUNT": "0"})


def rows(names: list[str]) -> list[FileRow]:
    return [
        FileRow(
            f"id{name}",
            f"{name}.txt",
            1,
            "0" * 64,
            "text/plain",
            None,
            "2026-12-07T03:00:00.000000Z",
            "owner",
        )  # fmt: skip
        for name in names
    ]


@pytest.mark.parametrize("total", [3, 120])
def test_the_list_in_pieces_is_the_list_rendered_whole(total):
    listing = Listing(rows(["a", "b", "c"]), total, 1, -(-total // PAGE_SIZE), EVERY_FILE)
    pieces = list_pieces(listing)
    assert pieces is not None and (pieces.pager != "") == (total > PAGE_SIZE)
    assert pieces.html() == render_markup(files_part(listing))


def test_a_repaint_sends_only_the_rows_that_changed():
    def pieces(names: list[str], total: int):
        listing = Listing(rows(names), total, 1, 1, EVERY_FILE)
        made = list_pieces(listing)
        assert made is not None
        return made

    before = pieces(["c", "b", "a"], 3)
    # A new file on top, one gone: the summary, the new row after nothing, a removal.
    changes = list_changes(before, pieces(["d", "c", "a"], 3))
    assert changes is not None
    selectors = [(selector, mode) for _, selector, mode in changes]
    assert selectors == [("#file-idb", None), ("#files > .file-list", "prepend")]
    changes = list_changes(before, pieces(["c", "b", "a", "z"], 4))
    assert changes is not None
    assert [(s, m) for _, s, m in changes] == [
        ("#files > .summary", "outer"),
        ("#file-ida", "after"),
    ]
    # Rows that swap places, or nearly all rows new: the whole list instead.
    assert list_changes(before, pieces(["a", "b", "c"], 3)) is None
    assert list_changes(before, pieces(["x", "y", "a"], 3)) is None
    assert list_changes(before, before) == []


async def test_a_page_that_shows_the_last_repaint_gets_only_the_new_row(config):
    async with signed_in_client(config) as client, AsyncExitStack() as stack:
        for name in ("one.txt", "two.txt", "three.txt"):
            await upload(client, name)
        [events] = await open_streams(stack, client, [{}])
        await upload(client, "four.txt")
        whole = await next_data(events, containing="four.txt")
        assert 'id="files"' in whole  # the first repaint of this view: all of it
        await upload(client, "five.txt")
        change = await next_data(events, containing="five.txt")
        assert "selector #files > .file-list" in change and "mode prepend" in change
        assert 'id="files"' not in change and "four.txt" not in change
