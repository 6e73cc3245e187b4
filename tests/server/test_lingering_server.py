"""Refusals written before the body is read reach the client, not a connection reset
(app/server/lingering.py): a raw client sends its whole body (up to the bound the
server still reads after answering) and only then reads; it gets the full answer."""

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tests.support.fixtures import RunningServer, start_server
from tests.support.live import LiveStream

from app.server.peers import LINGER_SLOTS

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
# What the test sends after the head: as much as the server reads while it lingers.
BODY_BYTES = MiB


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    yield from start_server(
        tmp_path_factory.mktemp("lingering"),
        "--max-file-bytes", str(MiB // 2),
        "--max-request-body-bytes", str(2 * MiB),
        "--max-connections-per-address", "2",
    )  # fmt: skip


def port_of(server: RunningServer) -> int:
    port = urlsplit(server.base_url).port
    assert port is not None
    return port


def send_all_then_read(sock: socket.socket, head: bytes) -> bytes:
    """The head, the body, then the answer until the server ends the connection."""
    sock.settimeout(10)
    try:
        sock.sendall(head + b"x" * BODY_BYTES)
    except OSError as exc:
        pytest.fail(f"the server reset the connection while the body was sent: {exc!r}")
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except OSError as exc:
        pytest.fail(f"the answer was lost to {exc!r}; read so far: {answer[:200]!r}")
    return answer


def full_json_answer(answer: bytes) -> tuple[str, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    assert int(headers["content-length"]) == len(body), answer[:300]
    return status_line, json.loads(body)


def put_head(server: RunningServer, *, token: str, length: int, host: str | None = None) -> bytes:
    host = host or f"127.0.0.1:{port_of(server)}"
    return (
        f"PUT /uploads/refused.bin HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


# Each connection to the module's server comes from an address of its own. A refused
# client gets its whole answer and leaves at once, while the server is still reading
# and throwing away the rest of that body (app/server/lingering.py); until it has, the
# connection counts against --max-connections-per-address 2, and a client coming back
# from the same address at once can be refused with 429 (seen in CI, under load).
CASE_NETWORKS = {
    "over the file size cap": "127.0.11",
    "over the request body cap": "127.0.12",
    "another host name": "127.0.13",
}
TOO_MANY_ADDRESS = "127.0.0.14"
LINGER_ADDRESS = "127.0.0.15"


def connection_from(server: RunningServer, address: str) -> socket.socket:
    return connections_from(port_of(server), address, 1)[0]


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("over the file size cap", "413"),  # the upload handler, before reading
        ("over the request body cap", "413"),  # Stario's own, rewritten in JSON
        ("another host name", "421"),  # --allowed-hosts
    ],
)
def test_a_refusal_before_the_body_is_read_reaches_a_client_still_sending(
    strict_server: RunningServer, case: str, status: str
) -> None:
    server = strict_server
    head = {
        "over the file size cap": put_head(server, token=server.token, length=2 * MiB),
        "over the request body cap": put_head(server, token=server.token, length=64 * MiB),
        "another host name": put_head(server, token=server.token, length=2 * MiB,
                                      host="elsewhere.example"),
    }[case]  # fmt: skip
    for n in range(1, 6):
        with connection_from(server, f"{CASE_NETWORKS[case]}.{n}") as sock:
            status_line, answer = full_json_answer(send_all_then_read(sock, head))
        assert status_line.split()[1] == status, status_line
        assert answer["error"]
    with server.http() as http:
        assert http.get("/api/files").json()["files"] == []


def test_the_429_for_one_connection_too_many_reaches_a_client_still_sending(
    strict_server: RunningServer,
) -> None:
    server = strict_server
    held = [connection_from(server, TOO_MANY_ADDRESS) for _ in range(2)]
    try:
        for _ in range(5):
            with connection_from(server, TOO_MANY_ADDRESS) as sock:
                answer = send_all_then_read(sock, put_head(server, token=server.token,
                                                           length=2 * MiB))  # fmt: skip
            status_line, refusal = full_json_answer(answer)
            assert status_line.startswith("HTTP/1.1 429"), status_line
            assert "too many connections" in refusal["error"]
    finally:
        for sock in held:
            sock.close()


def test_a_lingering_connection_ends_when_the_client_has_read_the_answer(
    strict_server: RunningServer,
) -> None:
    """No body at all after the head: the server's end (FIN) follows the answer at
    once, so a client reading until the end is not kept waiting for the bound."""
    server = strict_server
    with connection_from(server, LINGER_ADDRESS) as sock:
        sock.settimeout(10)
        sock.sendall(put_head(server, token=server.token, length=2 * MiB))
        sock.settimeout(1.5)  # under the 2 s linger: the end must come before it
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _ = full_json_answer(answer)
    assert status_line.startswith("HTTP/1.1 413")


def open_descriptors(server: RunningServer) -> int:
    return len(os.listdir(f"/proc/{server.process.pid}/fd"))


@pytest.fixture
def capped_server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from start_server(
        tmp_path, "--max-connections", "60", "--max-connections-per-address", "2"
    )


def connections_from(port: int, address: str, count: int) -> list[socket.socket]:
    return [
        socket.create_connection(("127.0.0.1", port), source_address=(address, 0))
        for _ in range(count)
    ]


def test_a_flood_beyond_the_total_cap_holds_no_sockets(tmp_path: Path):
    """Stario's 503 beyond the total cap closes at once, by clients that never close
    (a lingering 503 would keep a socket, and a place in the connection table, for
    the whole linger). The table is held by live streams: a handler answering is
    never reaped (app/server/peers.py), so a newcomer finds nothing to close."""
    for server in start_server(
        tmp_path,
        "--max-connections",
        "16",
        "--max-connections-per-address",
        "2",
        "--allowed-hosts",
        "127.0.0.1",
    ):
        port = port_of(server)
        before = open_descriptors(server)
        held: list[LiveStream] = []
        flood: list[socket.socket] = []
        try:
            for n in range(2, 10):  # the table full: 8 addresses x 2
                held += [LiveStream(server, f"127.0.0.{n}") for _ in range(2)]
            flood = connections_from(port, "127.0.0.32", 60)
            time.sleep(0.5)
            assert open_descriptors(server) <= before + len(held) + 4
            for sock in flood:
                sock.settimeout(5)
                assert sock.recv(100).startswith(b"HTTP/1.1 503")
        finally:
            for stream in held:
                stream.close()
            for sock in flood:
                sock.close()


def test_a_flood_of_refused_connections_holds_few_sockets(capped_server: RunningServer):
    """At most LINGER_SLOTS of the 429s beyond the per-address cap linger, by
    clients that never close (each keeps a socket, and a place in the connection
    table, for the whole linger)."""
    server = capped_server
    port = port_of(server)
    before = open_descriptors(server)
    held, flood = connections_from(port, "127.0.0.1", 2), []
    try:
        time.sleep(0.3)
        flood = connections_from(port, "127.0.0.1", 60)
        time.sleep(0.5)
        assert open_descriptors(server) <= before + len(held) + LINGER_SLOTS + 4
        for sock in flood:
            sock.settimeout(5)
            assert sock.recv(100).startswith(b"HTTP/1.1 429")
    finally:
        for sock in held + flood:
            sock.close()
