"""The live stream of a screen that shows one thing per account (Shared, Requests,
Account, Admin): paint it whole on connect, then again, part by part, when one of
its subjects changes on any node. The Files screen, with a view per tab (folder,
search, page), has its own (app/features/home/handlers.py); both share their
repaints through `LiveFeeds`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial

from stario import Context, Relay, Writer, h
from stario.datastar import SSE, data
from stario.markup import HtmlElement

from app.common.livefeeds import Framed, LiveFeeds, LiveStream, ViewGroup, framed

# Proxies drop a response that stays silent too long (nginx's proxy_read_timeout is
# 60 s by default); the idle stream says something well inside that.
KEEPALIVE_SECONDS = 15.0

# Every screen of one kind shows the same thing to an account: one view.
SCREEN_VIEW = "screen"

type ScreenFeeds = LiveFeeds[str, Framed]
# What changed (subjects) -> the parts to patch, each an element with its id.
type Paint = Callable[[str, frozenset[str] | None], Awaitable[Sequence[HtmlElement]]]


def _patch(element: HtmlElement, sse: SSE) -> None:
    sse.patch_elements(element)


def screen_feeds(
    relay: Relay[str], subjects: Callable[[str], Sequence[str]], paint: Paint, *, cap: int
) -> ScreenFeeds:
    """The feeds of one kind of screen: `paint(owner, changed)` renders the parts
    `changed` touches (every part when `changed` is None, on connect), once for every
    open page of the account."""

    async def repaint(
        owner: str, changed: frozenset[str], groups: Sequence[ViewGroup[str, Framed]]
    ) -> None:
        parts = await paint(owner, changed)
        for index, element in enumerate(parts):
            patch = framed(partial(_patch, element))
            for group in groups:
                group.send(f"part-{index}", patch)

    return LiveFeeds(relay, subjects, repaint, cap=cap)


def ended_notice(why: str, reload_href: str) -> HtmlElement:
    """What a page whose stream the server ended shows instead of its updates."""
    return h.Div(
        {"id": "live-ended", "class": "notice error", "role": "alert"},
        f"This page stopped updating: your account has {why}, so the oldest was closed. ",
        h.A(
            {"class": "button", "href": reload_href},
            data.on("click", "evt.preventDefault(); window.location.reload()"),
            "Reload",
        ),
    )


async def follow(
    c: Context,
    w: Writer,
    stream: LiveStream,
    still_signed_in: Callable[[Context], Awaitable[bool]],
    ended: Callable[[str], None],
    shown: str | None = None,
) -> None:
    """Write each repaint the stream is given until the client leaves: only what a
    browser showing version `shown` lacks (`Framed.for_stream`), a keep-alive comment
    when idle, the credentials checked again on every wake (a stream whose session
    ended stops, and the page, reconnecting, is sent to sign in), and `ended(why)`
    when the server ends the stream (too many open pages)."""
    async with c.alive():
        await w.drain()
        while True:
            if not await stream.wait(KEEPALIVE_SECONDS):
                SSE(w).ping("keep-alive")
            if stream.ended is not None:
                ended(stream.ended)
                await w.drain()
                return
            if not await still_signed_in(c):
                return
            for patch in stream.take():
                data = patch.for_stream(shown)
                if data is not None:
                    w.write(data)
                shown = patch.version or shown
            await w.drain()


async def serve_screen(
    c: Context,
    w: Writer,
    *,
    owner: str,
    feeds: ScreenFeeds,
    paint: Paint,
    still_signed_in: Callable[[Context], Awaitable[bool]],
    here: str,
    main_id: str,
) -> None:
    """The GET live handler's body: every part at once, then each repaint (`follow`). A
    page the server ended before (`?ended=1` or the `_ended` signal) gets 204, which
    stops Datastar's retries."""
    if c.req.query.get("ended") or '"_ended":true' in (c.req.query.get("datastar") or ""):
        w.empty(204)
        return
    sse = SSE(w)

    def ended(why: str) -> None:
        sse.patch_signals({"_ended": True})
        sse.patch_elements(ended_notice(why, here), selector=f"#{main_id}", mode="prepend")

    async with feeds.join(owner, SCREEN_VIEW) as (stream, _group):
        sse.patch_signals({"_offline": False})
        for element in await paint(owner, None):
            sse.patch_elements(element)
        await follow(c, w, stream, still_signed_in, ended)
