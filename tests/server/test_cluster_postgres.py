"""Live updates between nodes through a real PostgreSQL: delivery, no echo, and a
database restart that both nodes ride out by themselves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from tests.support.postgres import Cluster

from app.accounts.throttle import Throttle
from app.cluster import NodeRelay, PostgresBus, share_with_other_nodes
from app.ingest.progress import Progress


class Node:
    def __init__(self, url: str, name: str) -> None:
        self.relay = NodeRelay()
        self.progress = Progress(self.relay, interval=0.01)
        self.throttle = Throttle(limit=2)
        self.bus: PostgresBus = share_with_other_nodes(
            url, self.relay, progress=self.progress, throttles=[self.throttle], node=name
        )

    async def close(self) -> None:
        self.progress.close()
        await self.bus.close()


@asynccontextmanager
async def two_nodes(url: str) -> AsyncIterator[tuple[Node, Node]]:
    """Nodes "a" and "b" on the database at `url`, both listening."""
    a, b = Node(url, "a"), Node(url, "b")
    try:
        await asyncio.wait_for(a.bus.listening.wait(), 10)
        await asyncio.wait_for(b.bus.listening.wait(), 10)
        yield a, b
    finally:
        await a.close()
        await b.close()


async def next_message(subscription: object, timeout: float = 5.0) -> tuple[str, str]:
    return await asyncio.wait_for(subscription.receive(), timeout)  # type: ignore[attr-defined]


def test_what_one_node_publishes_reaches_the_other_and_only_once(postgres: Cluster) -> None:
    url = postgres.new_database()

    async def scenario() -> None:
        async with two_nodes(url) as (a, b):
            async with (
                b.relay.subscribe("files.changed.owner1", "uploads.progress.owner1") as on_b,
                a.relay.subscribe("files.changed.owner1") as on_a,
            ):
                latencies = []
                for n in range(20):
                    started = time.perf_counter()
                    a.relay.publish("files.changed.owner1", f"added {n}")
                    assert await next_message(on_b) == ("files.changed.owner1", f"added {n}")
                    latencies.append(time.perf_counter() - started)
                    assert await next_message(on_a) == ("files.changed.owner1", f"added {n}")
                with pytest.raises(TimeoutError):  # nothing echoes back to a
                    await next_message(on_a, 0.3)
                print(f"node to node: max {max(latencies) * 1000:.1f} ms over 20")

                # An upload in progress on a shows on b.
                with a.progress.track("film.mkv", 1000, "owner1") as transfer:
                    transfer.add("film.mkv", 400)
                    subject, _ = await next_message(on_b)
                    while not b.progress.list_transfers("owner1"):
                        subject, _ = await next_message(on_b)
                    assert subject == "uploads.progress.owner1"
                    [seen] = b.progress.list_transfers("owner1")
                    assert (seen.label, seen.received, seen.expected) == ("film.mkv", 400, 1000)
                while b.progress.list_transfers("owner1"):
                    await next_message(on_b)

            # Failed sign-ins on a count on b.
            a.throttle.failed(["name:ann"])
            a.throttle.failed(["name:ann"])
            deadline = time.monotonic() + 5
            while b.throttle.retry_after(["name:ann"]) is None:
                assert time.monotonic() < deadline, "b never heard of a's failures"
                await asyncio.sleep(0.02)

    asyncio.run(scenario())


def test_nodes_reconnect_after_a_database_restart_and_repaint_their_pages(
    postgres: Cluster,
) -> None:
    url = postgres.new_database()

    async def scenario() -> None:
        async with two_nodes(url) as (a, b):
            async with b.relay.subscribe("files.changed.owner1") as on_b:
                await asyncio.to_thread(postgres.restart)
                # Once b listens again it repaints what it serves: a hint sent while
                # it was away may have been lost.
                assert await next_message(on_b, 30) == ("files.changed.owner1", "resync")
                await asyncio.wait_for(a.bus.listening.wait(), 30)
                deadline = time.monotonic() + 30
                while True:
                    a.relay.publish("files.changed.owner1", "added after restart")
                    try:
                        message = await next_message(on_b, 1)
                    except TimeoutError:
                        assert time.monotonic() < deadline, "a's hints never reached b again"
                        continue
                    if message[1] == "added after restart":
                        break

    asyncio.run(scenario())
