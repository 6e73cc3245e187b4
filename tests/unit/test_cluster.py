"""Live updates across nodes: the relay's outbox, resync, and progress snapshots.
The PostgreSQL transport itself is exercised against a real cluster in
tests/test_nodes_postgres.py and the two-node test."""

from __future__ import annotations

import asyncio
import json

from app.cluster import MAX_PAYLOAD, NodeRelay, decode, encode
from app.ingest.progress import NOTHING_RECEIVED, SNAPSHOT_BYTES, Progress


def test_a_publish_goes_out_once_and_a_message_from_elsewhere_does_not_bounce() -> None:
    async def scenario() -> None:
        relay = NodeRelay()
        sent: list[tuple[str, str]] = []
        relay.outbox = lambda subject, data: sent.append((subject, data))
        async with relay.subscribe("files.changed.a") as events:
            relay.publish("files.changed.a", "added")
            assert await events.receive() == ("files.changed.a", "added")
            relay.publish_here("files.changed.a", "removed")
            assert await events.receive() == ("files.changed.a", "removed")
        assert sent == [("files.changed.a", "added")]

    asyncio.run(scenario())


def test_resync_repaints_every_page_this_node_serves() -> None:
    async def scenario() -> None:
        relay = NodeRelay()
        async with (
            relay.subscribe("files.changed.a", "uploads.progress.a") as first,
            relay.subscribe("files.changed.b") as second,
        ):
            relay.resync()
            got = {(await first.receive())[0], (await first.receive())[0]}
            assert got == {"files.changed.a", "uploads.progress.a"}
            assert await second.receive() == ("files.changed.b", "resync")

    asyncio.run(scenario())


def test_payloads_round_trip_and_oversized_or_malformed_ones_are_refused() -> None:
    payload = encode("node1", "files.changed.a", "added")
    assert payload is not None and decode(payload) == ("node1", "files.changed.a", "added")
    assert encode("node1", "x", "é" * MAX_PAYLOAD) is None
    for bad in ("", "{", "[1, 2, 3]", '["a", "b"]', "null"):
        assert decode(bad) is None


def test_another_nodes_uploads_are_listed_and_forgotten_when_it_goes_quiet() -> None:
    async def scenario() -> None:
        sender, receiver = Progress(NodeRelay(), interval=0.01), Progress(NodeRelay())
        sender.shared = True
        with sender.track("holiday.mov", 1000, "owner1") as transfer:
            transfer.add("holiday.mov", 250)
            sender.pause("up1", "notes.txt", 10, 20, "owner1")
            snapshot = sender.snapshot("owner1")
            receiver.absorb("nodeA", "owner1", snapshot)
            [remote] = receiver.list_transfers("owner1")
            assert (remote.label, remote.received, remote.expected) == ("holiday.mov", 250, 1000)
            assert remote.id.startswith("nodeA-")
            assert [p.label for p in receiver.list_paused("owner1")] == ["notes.txt"]
            assert receiver.list_transfers("owner2") == []
        sender.resume("up1")
        assert sender.snapshot("owner1") == NOTHING_RECEIVED
        receiver.absorb("nodeA", "owner1", NOTHING_RECEIVED)
        assert receiver.list_transfers("owner1") == [] and receiver.list_paused("owner1") == []
        receiver.absorb("nodeA", "owner1", "not json")  # ignored
        sender.close()

    asyncio.run(scenario())


def test_a_snapshot_always_fits_one_notification() -> None:
    async def scenario() -> None:
        progress = Progress(NodeRelay())
        names = [f"{'x' * 300}-{n}" for n in range(200)]
        tracked = [progress.track(name, 10**9, "owner1") for name in names]
        for context in tracked:
            context.__enter__()
        text = progress.snapshot("owner1")
        assert len(text) <= SNAPSHOT_BYTES
        assert 10 < len(json.loads(text)["t"]) < 200
        for context in tracked:
            context.__exit__(None, None, None)
        progress.close()

    asyncio.run(scenario())


def test_failed_sign_ins_count_across_nodes() -> None:
    from app.accounts.throttle import Throttle

    here, there = Throttle(limit=3), Throttle(limit=3)
    sent: list[tuple[str, str]] = []
    here.announce = lambda subject, data: sent.append((subject, data))
    here.failed(["name:ann", "addr:127.0.0.2"])
    here.failed(["name:ann"])
    for subject, data in sent:
        assert subject == "throttle.signin"
        there.absorb(data)
    there.failed(["name:ann"])
    assert there.retry_after(["name:ann"]) is not None
    assert there.retry_after(["addr:127.0.0.2"]) is None
    here.forget("name:ann")
    there.absorb(sent[-1][1])
    assert there.retry_after(["name:ann"]) is None
    there.absorb("garbage")
    there.absorb('["failed", [1]]')
