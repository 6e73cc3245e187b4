"""Slow clients, connection caps and graceful shutdown against a real `stowage serve`.

Attackers connect from other loopback addresses (127.0.0.2 and up: loopback is a /8)
and ordinary clients from 127.0.0.1, so the per-address cap can be seen at work.
"""

import asyncio
import base64
import hashlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.support.fixtures import ROOT, bearer, start_server
from tests.support.live import LiveStream, port_of

pytestmark = pytest.mark.slow
# Seconds added to every "ended by the rate floor within ..." bound: the suite runs on
# two workers on a 2-core machine, and a judgement due at 4 s may come at 5. The bounds
# still tell the floor's judgement from the 30 s body timeout it replaces.
LOAD_MARGIN = 3
MiB = 1024 * 1024
_start = contextmanager(start_server)


def running(tmp_path, *flags, **kwargs):
    """The real server; raw requests here name the host without its port."""
    return _start(tmp_path, "--allowed-hosts", "127.0.0.1", *flags, **kwargs)


@dataclass
class Ended:
    """How a connection ended: the server's answer (b"" if none) and how long it lived."""

    seconds: float
    answer: bytes
    reset: bool = False

    @property
    def status(self) -> int | None:
        if not self.answer.startswith(b"HTTP/1.1 "):
            return None
        return int(self.answer[9:12])

    @property
    def body(self) -> bytes:
        return self.answer.partition(b"\r\n\r\n")[2]

    def error(self) -> str:
        return json.loads(self.body)["error"]


async def trickle(
    port: int,
    head: bytes = b"",
    *,
    first: bytes = b"",
    every: float = 1.0,
    piece: bytes = b"x",
    local: str = "127.0.0.1",
    give_up: float = 30,
) -> Ended:
    """Open a connection, send `head` and `first`, then `piece` every `every` seconds
    until the server answers and closes (or `give_up` seconds pass).

    The answer is read as it arrives, not at the end: a server that answers and closes
    while the client still has a piece in flight makes the kernel reset the connection,
    and a reset throws away whatever was not yet read."""
    started = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0))
    except ConnectionError:
        return Ended(time.monotonic() - started, b"", reset=True)
    received = bytearray()
    reset = False

    async def read_all() -> None:
        nonlocal reset
        try:
            while chunk := await reader.read(65536):
                received.extend(chunk)
        except ConnectionError:
            reset = True

    answer = asyncio.ensure_future(read_all())
    try:
        writer.write(head + first)
        while not answer.done() and time.monotonic() - started < give_up:
            await asyncio.wait([answer], timeout=every)
            if head and not received and not answer.done() and not writer.is_closing():
                writer.write(piece)
        if not answer.done():
            await asyncio.wait([answer], timeout=5)
        return Ended(time.monotonic() - started, bytes(received), reset=reset and not received)
    except ConnectionError:
        return Ended(time.monotonic() - started, bytes(received), reset=not received)
    finally:
        answer.cancel()
        writer.close()


# One byte of a chunked body, framed.
CHUNK = b"1\r\nx\r\n"


def put_head(token: str, *, length: int | None, extra: str = "", name: str = "crawl.bin") -> bytes:
    framing = f"content-length: {length}" if length is not None else "transfer-encoding: chunked"
    return (
        f"PUT /uploads/{name} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {token}"
        f"\r\n{framing}\r\n{extra}\r\n"
    ).encode()


def post_head(token: str, content_type: str, length: int) -> bytes:
    return (
        f"POST /uploads HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {token}\r\n"
        f"content-type: {content_type}\r\ncontent-length: {length}\r\n\r\n"
    ).encode()


def stored_files(data_dir: Path) -> list[Path]:
    uploads = data_dir / "uploads"
    return sorted(p for p in uploads.rglob("*") if p.is_file())


# --- minimum upload rate ----------------------------------------------------------------


def test_crawling_uploads_of_every_transport_end_with_408_and_nothing_kept(tmp_path):
    grace, window = 1, 3
    with running(
        tmp_path, "--min-upload-rate-window", str(window), "--min-upload-rate-grace", str(grace)
    ) as server:
        port, token = port_of(server), server.token
        incoming = server.data_dir / "uploads" / ".incoming"
        temp_file_seen = threading.Event()

        async def watch_incoming() -> None:
            while not temp_file_seen.is_set():
                if any(incoming.iterdir()):
                    temp_file_seen.set()
                await asyncio.sleep(0.05)

        async def keep_alive_after_an_upload() -> Ended:
            """A whole upload, then the connection left idle: it must not be judged."""
            started = time.monotonic()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(put_head(token, length=MiB, name="kept.bin") + os.urandom(MiB))
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            after = await reader.read()  # until the server closes the idle connection
            writer.close()
            return Ended(time.monotonic() - started, head + after)

        async def attack() -> dict[str, Ended]:
            boundary = "crawl"
            preamble = (
                f'--{boundary}\r\ncontent-disposition: form-data; name="f"; '
                'filename="a.bin"\r\n\r\n'
            ).encode()
            clients = {
                # Small enough for Stario to buffer before any handler runs.
                "small raw body": trickle(port, put_head(token, length=100)),
                # Small too, but Stario answers 100 Continue and starts the handler
                # before the body: the handler judges it (no bytes come at all).
                "small raw body after 100-continue": trickle(
                    port, put_head(token, length=100, extra="expect: 100-continue\r\n")
                ),
                "large raw body": trickle(port, put_head(token, length=10 * MiB)),
                "chunked raw body": trickle(port, put_head(token, length=None), piece=CHUNK),
                "multipart": trickle(
                    port,
                    post_head(token, f"multipart/form-data; boundary={boundary}", 10 * MiB),
                    first=preamble,
                ),
                "file signals": trickle(
                    port, post_head(token, "application/json", MiB), first=b'{"files": ['
                ),
                "datastar": trickle(
                    port, put_head(token, length=MiB, extra="datastar-request: true\r\n")
                ),
                # Fast at first (a temp file exists), then a crawl: judged once the
                # fast seconds have left the window.
                "fast then crawling": trickle(
                    port, put_head(token, length=50 * MiB), first=os.urandom(6 * MiB)
                ),
            }
            clients["keep-alive after an upload"] = keep_alive_after_an_upload()
            watcher = asyncio.ensure_future(watch_incoming())
            ended = await asyncio.gather(*clients.values())
            temp_file_seen.set()
            await watcher
            return dict(zip(clients, ended, strict=True))

        results = asyncio.run(attack())
        for kind, ended in results.items():
            print(f"\n{kind}: {ended.status} after {ended.seconds:.1f} s")
        for kind in ("large raw body", "chunked raw body", "multipart", "file signals"):
            ended = results[kind]
            assert ended.status == 408, kind
            assert ended.error() == "the upload was too slow: under 10 KiB/s over 3 seconds"
            assert ended.seconds < grace + 3 + LOAD_MARGIN, kind
        continued = results["small raw body after 100-continue"]
        interim = b"HTTP/1.1 100 Continue\r\n\r\n"
        assert continued.answer.startswith(interim)
        continued.answer = continued.answer.removeprefix(interim)
        assert continued.status == 408
        assert continued.error() == "the upload was too slow: under 10 KiB/s over 3 seconds"
        assert continued.seconds < grace + 3 + LOAD_MARGIN
        small = results["small raw body"]  # refused by the connection, before the handler
        assert small.status == 408
        assert small.error() == "the request was too slow: under 10 KiB/s over 3 seconds"
        assert small.seconds < grace + 3 + LOAD_MARGIN
        datastar = results["datastar"]
        assert datastar.status == 200
        assert b"text/event-stream" in datastar.answer
        assert b"the upload was too slow" in datastar.body
        crawled = results["fast then crawling"]
        assert crawled.status == 408
        assert window <= crawled.seconds < window + 3 + LOAD_MARGIN
        assert temp_file_seen.is_set()
        idle = results["keep-alive after an upload"]
        assert idle.status == 201
        assert idle.answer.endswith(b"\r\n\r\n")  # closed by Stario's idle timeout, no 408
        assert idle.seconds > grace + 2

        with server.http() as http:
            [kept] = http.get("/api/files").json()["files"]
        assert kept["name"] == "kept.bin"
        assert stored_files(server.data_dir) == [
            server.data_dir / "uploads" / kept["id"][:2] / kept["id"]
        ]


# --- connection caps --------------------------------------------------------------------


def test_connections_beyond_the_caps_are_refused_at_once(tmp_path):
    with running(
        tmp_path, "--max-connections", "8", "--max-connections-per-address", "3"
    ) as server:
        port = port_of(server)

        def connect(local: str) -> socket.socket:
            sock = socket.create_connection(("127.0.0.1", port), source_address=(local, 0))
            sock.settimeout(5)
            return sock

        def answer_of(sock: socket.socket) -> bytes:
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            return data

        def served_from(local: str) -> bool:
            transport = httpx.HTTPTransport(local_address=local)
            with httpx.Client(transport=transport, headers=server.headers) as http:
                return http.get(server.base_url + "/api/files").status_code == 200

        # Live streams: busy answering, so a full table has nothing to reap (below).
        held = [LiveStream(server, "127.0.0.2") for _ in range(3)]
        refused = connect("127.0.0.2")
        started = time.monotonic()
        answer = Ended(0, answer_of(refused))
        assert time.monotonic() - started < 1  # at once, not after a timeout
        assert answer.status == 429
        assert b"retry-after: 1" in answer.answer
        assert answer.error().startswith("too many connections from your address (at most 3)")
        assert served_from("127.0.0.1")  # another address is not held back

        held += [LiveStream(server, "127.0.0.3") for _ in range(3)]
        held += [LiveStream(server, "127.0.0.4") for _ in range(2)]
        over_total = Ended(0, answer_of(connect("127.0.0.5")))
        assert over_total.status == 503  # Stario's own cap, the 9th connection
        assert all(stream.still_open() for stream in held)

        # A silent connection in a full table is closed to let a newcomer in.
        held.pop().close()
        silent = connect("127.0.0.4")
        time.sleep(0.2)
        assert served_from("127.0.0.5")
        assert answer_of(silent) == b""  # closed without a word, like an idle keep-alive
        assert all(stream.still_open() for stream in held)

        for stream in held:
            stream.close()
        deadline = time.monotonic() + 5
        while not served_from("127.0.0.2"):  # the counts come down as connections close
            assert time.monotonic() < deadline
            time.sleep(0.1)


def lower_open_file_limit() -> None:
    # The limit a service started by systemd usually gets; the server cannot raise it.
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def test_1100_tricklers_and_200_idle_connections_do_not_lock_out_ordinary_clients(tmp_path):
    grace, window = 4, 5
    # 4 x 60 tricklers and 3 x 60 idle connections are let in: 420 of the 480 the
    # open-file limit allows, so what the caps let through still leaves room.
    tricklers_from = [f"127.0.0.{n}" for n in range(2, 6)]
    idle_from = [f"127.0.0.{n}" for n in range(6, 9)]
    with running(
        tmp_path,
        "--min-upload-rate-window", str(window), "--min-upload-rate-grace", str(grace),
        preexec_fn=lower_open_file_limit,
    ) as server:  # fmt: skip
        log = (tmp_path / "server.log").read_text()
        assert "open-file limit 1024 (hard limit 1024); at most 480 connections, 60 from" in log
        port, token = port_of(server), server.token
        downloads = {}
        with server.http() as http:
            for n in range(10):
                data = os.urandom(2 * MiB)
                r = http.put(f"/uploads/before-{n}.bin", content=data)
                assert r.status_code == 201
                downloads[r.json()["files"][0]["url"]] = hashlib.sha256(data).hexdigest()

        async def ordinary(http: httpx.AsyncClient, n: int) -> bool:
            if n % 2:
                url, digest = list(downloads.items())[n // 2]
                r = await http.get(url)
                return r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == digest
            data = os.urandom(MiB)
            r = await http.put(f"/uploads/during-{n}.bin", content=data)
            return r.status_code == 201 and r.json()["files"][0]["sha256"] == (
                hashlib.sha256(data).hexdigest()
            )

        async def attack() -> tuple[list[Ended], list[Ended], list[bool], float]:
            kinds = [
                (put_head(token, length=100), b"x"),  # buffered by Stario: judged on arrival
                (put_head(token, length=10 * MiB), b"x"),  # read by the handler
                (put_head(token, length=None), CHUNK),  # chunked, read by the handler
            ]
            tricklers = [
                asyncio.ensure_future(
                    trickle(
                        port,
                        kinds[n % 3][0],
                        piece=kinds[n % 3][1],
                        local=tricklers_from[n % len(tricklers_from)],
                    )
                )
                for n in range(1100)
            ]
            idle = [
                asyncio.ensure_future(trickle(port, local=idle_from[n % len(idle_from)]))
                for n in range(200)
            ]
            await asyncio.sleep(1)  # every attacker is connected (or refused) by now
            started = time.monotonic()
            async with httpx.AsyncClient(
                base_url=server.base_url,
                headers=bearer(token),
                timeout=30,
                limits=httpx.Limits(max_connections=5),
            ) as http:
                ok = await asyncio.gather(*(ordinary(http, n) for n in range(20)))
            ordinary_seconds = time.monotonic() - started
            return (
                await asyncio.gather(*tricklers),
                await asyncio.gather(*idle),
                list(ok),
                ordinary_seconds,
            )

        tricklers, idle, ok, ordinary_seconds = asyncio.run(attack())
        outcomes = Counter(
            "reset" if t.reset else str(t.status) if t.status else "closed" for t in tricklers
        )
        longest = max(t.seconds for t in tricklers)
        idle_held = [i.seconds for i in idle if not i.answer and not i.reset]
        print(
            f"\n{sum(ok)} of 20 ordinary requests succeeded in {ordinary_seconds:.1f} s "
            f"beside 1100 tricklers ({dict(outcomes)}; the longest lived {longest:.1f} s, "
            f"{sum(t.status == 408 for t in tricklers)} ended by the rate floor) and 200 idle "
            f"connections ({len(idle_held)} let in, closed by Stario's header timeout after "
            f"at most {max(idle_held):.1f} s); "
            "server open-file limit 1024"
        )
        assert ok == [True] * 20
        assert set(outcomes) <= {"408", "429", "reset"}
        # 60 per attacking address are let in and judged by the rate floor; on a loaded
        # machine some of those are reset instead of answered, so half is the floor here
        # (every trickler still ends within the window, asserted below).
        assert outcomes["408"] >= 120
        assert len(idle_held) >= 150
        assert longest < grace + window + LOAD_MARGIN
        assert max(i.seconds for i in idle) < grace + window + LOAD_MARGIN
        assert server.process.poll() is None
        with server.http() as http:
            assert len(http.get("/api/files").json()["files"]) == 20
        assert list((server.data_dir / "uploads" / ".incoming").iterdir()) == []


@pytest.mark.parametrize("min_upload_rate", ["10KiB", "0"])
def test_a_full_table_closes_the_connections_furthest_behind_first(tmp_path, min_upload_rate):
    # Six slots: two live streams and an honest upload (never chosen), then a request
    # head, a large body and a silent connection, each left waiting half a second
    # longer than the next. Each newcomer (kept open) makes the table full again.
    # With the minimum upload rate off, connections are measured against its default.
    with running(
        tmp_path, "--max-connections", "6", "--min-upload-rate", min_upload_rate
    ) as server:
        port = port_of(server)
        streams = [LiveStream(server), LiveStream(server)]
        data = os.urandom(24 * MiB)
        upload = UploadInFlight(server, data, seconds=6)
        wait_for_temp_file(server.data_dir)

        def connect(first: bytes) -> socket.socket:
            sock = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0))
            sock.settimeout(5)
            sock.sendall(first)
            time.sleep(0.5)
            return sock

        def answer_of(sock: socket.socket) -> Ended:
            received = b""
            try:
                while chunk := sock.recv(65536):
                    received += chunk
            except ConnectionError:
                pass
            return Ended(0, received)

        head = connect(b"GET /api/files HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        body = connect(put_head(server.token, length=10 * MiB) + b"x")
        silent = connect(b"")
        newcomers = []
        for victim in (head, body, silent):
            http = server.http(transport=httpx.HTTPTransport(local_address="127.0.0.3"))
            newcomers.append(http)
            assert http.get("/api/files").status_code == 200
            ended = answer_of(victim)
            if victim is silent:
                assert ended.answer == b""  # closed without a word, like an idle keep-alive
            else:
                assert ended.status == 408
                assert b"retry-after: 1" in ended.answer
                assert ended.error().startswith(
                    "the server is at its connection limit (--max-connections) and this"
                    " request was among the slowest to arrive (under 10 KiB/s)"
                )
        assert all(stream.still_open() for stream in streams)
        upload.thread.join()
        assert isinstance(upload.outcome, httpx.Response)
        assert upload.outcome.status_code == 201
        assert upload.outcome.json()["files"][0]["sha256"] == hashlib.sha256(data).hexdigest()
        for http in newcomers:
            http.close()
        with server.http() as http:
            assert [f["name"] for f in http.get("/api/files").json()["files"]] == ["slow.bin"]
        assert list((server.data_dir / "uploads" / ".incoming").iterdir()) == []


def test_a_full_table_spares_a_handler_at_work_on_a_whole_request(tmp_path):
    # Four slots: a live stream; a JSON file-signals upload that holds the whole
    # signals memory budget while it arrives (steadily); a small one whose handler,
    # its body whole, waits for that budget, silent on both sides; and a silent
    # connection half a second younger. A newcomer closes the silent one, not the
    # handler that waits for the server.
    signals = json.dumps(
        {
            "files": [
                {"name": "held.bin", "contents": base64.b64encode(os.urandom(3 * MiB)).decode()}
            ]
        }
    ).encode()
    small = json.dumps({"files": [{"name": "waits.txt", "contents": "aGk="}]}).encode()
    with running(tmp_path, "--max-connections", "4", "--signals-memory-bytes", str(MiB)) as server:
        port = port_of(server)
        stream = LiveStream(server)
        holder: dict[str, httpx.Response] = {}

        def hold() -> None:
            with server.http(timeout=30) as http:
                holder["response"] = http.post(
                    "/uploads",
                    content=throttled(signals, 4),
                    headers={"content-type": "application/json",
                             "content-length": str(len(signals))},
                )  # fmt: skip

        holding = threading.Thread(target=hold)
        holding.start()
        time.sleep(0.5)
        waiting = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0))
        waiting.settimeout(15)
        waiting.sendall(
            f"POST /uploads HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {server.token}"
            f"\r\ncontent-type: application/json\r\ncontent-length: {len(small)}"
            "\r\nconnection: close\r\n\r\n".encode()
            + small
        )
        time.sleep(0.5)
        silent = socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0))
        silent.settimeout(5)
        time.sleep(0.5)
        assert holding.is_alive()  # the budget is still held

        transport = httpx.HTTPTransport(local_address="127.0.0.3")
        with server.http(transport=transport) as newcomer:
            assert newcomer.get("/api/files").status_code == 200
        assert silent.recv(65536) == b""  # the one chosen
        received = b""
        while chunk := waiting.recv(65536):
            received += chunk
        waited = Ended(0, received)
        print(f"\nthe handler that waited for the budget answered {waited.status}")
        # Stored once the budget came back, or told to retry: not cut off by the reaper.
        assert waited.status in (201, 503), waited.answer
        if waited.status == 503:
            assert "too many file-signal uploads" in waited.error()
        holding.join()
        assert holder["response"].status_code == 201
        assert stream.still_open()


@pytest.mark.parametrize("addresses", [8, 64])
def test_reconnecting_tricklers_from_many_addresses_leave_room_for_ordinary_requests(
    tmp_path, addresses
):
    # 256 connections at most, 32 per address: 8 addresses fill the table exactly and
    # 64 could hold eight tables. 1,100 tricklers (a request head, a small, large or
    # chunked body a byte a second, or nothing) open a new connection as soon as
    # theirs is cut; a client from 127.0.0.1 then sends 20 ordinary requests, each on
    # a new connection, while an honest upload moves data and a live stream is open.
    with running(tmp_path, "--max-connections", "256") as server:
        port, token = port_of(server), server.token
        downloads = {}
        with server.http() as http:
            for n in range(4):
                data = os.urandom(MiB)
                r = http.put(f"/uploads/before-{n}.bin", content=data)
                assert r.status_code == 201
                downloads[r.json()["files"][0]["url"]] = hashlib.sha256(data).hexdigest()
        live = LiveStream(server)
        honest_data = os.urandom(48 * MiB)
        # Long enough to be still going after the 20 requests below on a loaded machine.
        honest = UploadInFlight(server, honest_data, seconds=12)
        flood = subprocess.Popen(
            [sys.executable, "-m", "tests.support.tricklers", str(port), token, "1100",
             "2", str(addresses + 1), "30"],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert flood.stdout is not None and flood.stdout.readline() == "ready\n"
            time.sleep(1)  # the table is full and turning over

            def ordinary(http: httpx.Client, n: int) -> bool:
                if n % 3 == 0:
                    return http.get("/api/files").status_code == 200
                if n % 3 == 1:
                    url, digest = list(downloads.items())[n % len(downloads)]
                    r = http.get(url)
                    return r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == digest
                data = os.urandom(64 * 1024)
                r = http.put(f"/uploads/during-{n}.bin", content=data)
                if r.status_code != 201:
                    print(f"ordinary upload {n}: {r.status_code} {r.text}")
                return r.status_code == 201

            served = []
            # Every request on a connection of its own (none kept alive).
            with server.http(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as http:
                for n in range(20):
                    started = time.monotonic()
                    try:
                        ok = ordinary(http, n)
                    except httpx.HTTPError as exc:
                        ok = False
                        print(f"ordinary request {n}: {exc!r}")
                    served.append((ok, time.monotonic() - started))
            assert honest.thread.is_alive()  # the honest upload went on beside it all
        finally:
            # Closing its stdin stops the flood; it prints what the server answered.
            answered = flood.communicate(timeout=20)[0].strip().splitlines()[-1]
        honest.thread.join()
        print(
            f"\n{sum(ok for ok, _ in served)} of 20 ordinary requests served beside 1100"
            f" tricklers from {addresses} addresses; the slowest took"
            f" {max(s for _, s in served):.2f} s"
            f" ({', '.join(f'{s:.2f}' for _, s in served)}); the tricklers met {answered}"
        )
        assert [ok for ok, _ in served] == [True] * 20
        # Served, not locked out (that would be the client's 10 s timeout); the seconds
        # are printed above, and a loaded machine (the suite runs on two workers) must
        # not fail a request that took 1.2 s.
        assert max(seconds for _, seconds in served) < 5
        assert isinstance(honest.outcome, httpx.Response)
        assert honest.outcome.status_code == 201
        assert (
            honest.outcome.json()["files"][0]["sha256"] == hashlib.sha256(honest_data).hexdigest()
        )
        assert live.still_open()
        assert server.process.poll() is None
        # The table was full and turning over: tricklers were told why they were closed.
        met = json.loads(answered)
        assert sum(n for kind, n in met.items() if kind.endswith(": 408")) > 0
        # Nothing of theirs was kept: 4 files before, 6 ordinary uploads, the honest one.
        with server.http() as http:
            assert len(http.get("/api/files").json()["files"]) == 11
        incoming = server.data_dir / "uploads" / ".incoming"
        deadline = time.monotonic() + 10
        while any(incoming.iterdir()):  # the last reaped uploads are cleaning up
            assert time.monotonic() < deadline, list(incoming.iterdir())
            time.sleep(0.1)


# --- graceful shutdown ------------------------------------------------------------------


def throttled(data: bytes, seconds: float, pieces: int = 40):
    size = len(data) // pieces
    for n in range(pieces):
        yield data[n * size : (n + 1) * size if n < pieces - 1 else len(data)]
        time.sleep(seconds / pieces)


class UploadInFlight:
    """A raw upload sent over about `seconds` seconds on its own thread."""

    def __init__(self, server, data: bytes, seconds: float) -> None:
        self.outcome: httpx.Response | Exception | None = None

        def run() -> None:
            try:
                with server.http(timeout=60) as http:
                    self.outcome = http.put("/uploads/slow.bin", content=throttled(data, seconds))
            except httpx.HTTPError as exc:
                self.outcome = exc

        self.thread = threading.Thread(target=run)
        self.thread.start()


def wait_for_temp_file(data_dir: Path) -> None:
    """Until the upload's temp file exists (the first 4 MiB batch went to disk)."""
    incoming = data_dir / "uploads" / ".incoming"
    deadline = time.monotonic() + 10
    while not (incoming.exists() and any(incoming.iterdir())):
        assert time.monotonic() < deadline, "the upload never reached the disk"
        time.sleep(0.02)


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_sigterm_lets_an_upload_in_flight_finish_and_refuses_new_connections(tmp_path):
    data = os.urandom(24 * MiB)
    with running(tmp_path, "--shutdown-timeout", "15") as server:
        # Long enough to be still in flight once the listener is seen closed, on a
        # loaded machine (the suite runs on two workers).
        upload = UploadInFlight(server, data, seconds=6)
        wait_for_temp_file(server.data_dir)
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        deadline = signalled + 2 + LOAD_MARGIN
        while not refuses_connections(port_of(server)):
            assert time.monotonic() < deadline, "still accepting after SIGTERM"
            time.sleep(0.05)
        assert upload.thread.is_alive()  # SIGTERM came while the upload was in flight
        upload.thread.join()
        assert server.process.wait(15) == 0
        print(f"\nthe upload ended {time.monotonic() - signalled:.1f} s after SIGTERM")
        assert isinstance(upload.outcome, httpx.Response)
        assert upload.outcome.status_code == 201
        stored = upload.outcome.json()["files"][0]
        assert stored["sha256"] == hashlib.sha256(data).hexdigest()
        blob = server.data_dir / "uploads" / stored["id"][:2] / stored["id"]
        assert blob.read_bytes() == data
        assert list((server.data_dir / "uploads" / ".incoming").iterdir()) == []
        token = server.token
    with running(tmp_path, account=False) as again:
        with httpx.Client(base_url=again.base_url, headers=bearer(token)) as http:
            [row] = http.get("/api/files").json()["files"]
            assert row["id"] == stored["id"]
            assert http.get(row["url"]).content == data


def test_sigterm_ends_an_upload_that_outlasts_the_timeout_with_nothing_stored(tmp_path):
    with running(tmp_path, "--shutdown-timeout", "1") as server:
        upload = UploadInFlight(server, os.urandom(40 * MiB), seconds=20)
        wait_for_temp_file(server.data_dir)
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        assert server.process.wait(15) == 0
        stopped = time.monotonic() - signalled
        upload.thread.join()
        print(f"\nthe server stopped {stopped:.1f} s after SIGTERM; the upload: {upload.outcome!r}")
        # The timeout, Stario's one-second force-close, and clean-up; far from the
        # upload's 20 s.
        assert stopped < 5 + LOAD_MARGIN
        assert not (
            isinstance(upload.outcome, httpx.Response) and upload.outcome.status_code == 201
        )
        assert list((server.data_dir / "uploads" / ".incoming").iterdir()) == []
        assert stored_files(server.data_dir) == []
        token = server.token
    with running(tmp_path, account=False) as again:
        with httpx.Client(base_url=again.base_url, headers=bearer(token)) as http:
            assert http.get("/api/files").json()["files"] == []
