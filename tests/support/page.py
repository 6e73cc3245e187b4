"""The page's Datastar conversation through TestClient: the signals a page sends and
the patches it reads back."""

import asyncio
from collections.abc import AsyncIterator

IDENTITY = {"accept-encoding": "identity"}


DATASTAR = {"datastar-request": "true"}


async def upload(client, name: str, body: bytes) -> str:
    r = await client.post("/uploads", params={"name": name}, content=body)
    assert r.status_code == 201, r.text
    return r.json()["files"][0]["id"]


async def next_data(events: AsyncIterator[dict[str, str]], *, containing: str) -> str:
    """The next event whose data mentions `containing` (progress ticks may interleave)."""
    async with asyncio.timeout(5):
        while True:
            event = await anext(events)
            if containing in event["data"]:
                return event["data"]
