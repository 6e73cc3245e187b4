"""A live stream held open on a raw socket from a chosen loopback address, as a
browser's page holds one."""

import socket


class LiveStream:
    """The home page's live SSE stream, held open by a silent client."""

    def __init__(self, server, local: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection(
            ("127.0.0.1", port_of(server)), timeout=5, source_address=(local, 0)
        )
        self.sock.sendall(
            b"GET /live HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            + f"authorization: Bearer {server.token}\r\n\r\n".encode()
        )
        received = b""
        while b"\r\n\r\n" not in received:
            received += self.sock.recv(65536)
        assert received.startswith(b"HTTP/1.1 200 ")
        assert b"content-type: text/event-stream" in received

    def still_open(self) -> bool:
        """Nothing but events came since: no answer of its own, no close, no reset."""
        self.sock.setblocking(False)
        try:
            while chunk := self.sock.recv(65536):
                if b"HTTP/1.1 " in chunk:
                    return False
        except BlockingIOError:
            return True
        except ConnectionError:
            return False
        return False  # the server closed it

    def close(self) -> None:
        self.sock.close()


def port_of(server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])
