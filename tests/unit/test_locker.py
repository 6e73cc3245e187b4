"""The resumable engine's in-process locker (app/resumable/locker.py) on its own: one
request at a time per upload, and the newest ends an append still reading."""

import asyncio

from app.resumable.locker import InProcessLocker

UPLOAD = "u" * 32


async def test_a_newer_request_ends_an_append_still_reading():
    locker = InProcessLocker()
    reading = asyncio.Event()
    outcome: list[str] = []

    async def append() -> None:
        async with locker.hold(UPLOAD) as hold:
            hold.reading = True
            try:
                reading.set()
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                me = asyncio.current_task()
                assert me is not None and hold.taken_over(me)
                me.uncancel()
                outcome.append("taken over")
            finally:
                hold.reading = False
            outcome.append("recorded")

    older = asyncio.create_task(append())
    await reading.wait()
    assert locker.busy(UPLOAD)
    async with locker.hold(UPLOAD):
        # The older append was ended, and recorded what it had, before we got in.
        assert outcome == ["taken over", "recorded"]
    await older
    assert not locker.busy(UPLOAD)


async def test_an_append_past_its_body_is_waited_for_not_ended():
    locker = InProcessLocker()
    holding = asyncio.Event()
    release = asyncio.Event()

    async def finishing() -> str:
        async with locker.hold(UPLOAD):
            holding.set()
            await release.wait()  # recording, not reading: never cancelled
            return "finished"

    async def newer_request() -> str:
        async with locker.hold(UPLOAD):
            return "got in"

    older = asyncio.create_task(finishing())
    await holding.wait()
    newer = asyncio.create_task(newer_request())
    await asyncio.sleep(0.01)
    assert not newer.done()
    release.set()
    assert await older == "finished"
    assert await newer == "got in"
    assert not locker.busy(UPLOAD)


async def test_another_node_asking_ends_the_append_here():
    locker = InProcessLocker()
    reading = asyncio.Event()

    async def append() -> bool:
        async with locker.hold(UPLOAD) as hold:
            hold.reading = True
            reading.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                me = asyncio.current_task()
                assert me is not None
                me.uncancel()
                return hold.taken_over(me)
        return False

    task = asyncio.create_task(append())
    await reading.wait()
    locker.let_go(UPLOAD)
    assert await task is True
    locker.let_go(UPLOAD)  # nobody holds it now: nothing to do
    assert not locker.busy(UPLOAD)
