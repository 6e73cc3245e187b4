"""Quotas on the real `stowage serve`: streamed uploads racing for the last bytes of one."""

import pytest


@pytest.mark.slow
def test_streamed_uploads_race_on_the_real_server(tmp_path):
    """Chunked bodies (no Content-Length): space is held as bytes arrive, so of two
    uploads that fit alone but not together, exactly one is stored, and the refused
    one is cut off the moment it passes the quota."""
    import threading
    import time

    import httpx
    from tests.support.fixtures import start_server

    servers = start_server(tmp_path, "--default-quota", "3000000")
    server = next(servers)
    try:
        results: list[int] = []

        def send(name: str) -> None:
            def body():
                for _ in range(20):
                    time.sleep(0.02)
                    yield b"x" * 100_000

            with server.http(timeout=30) as http:
                try:
                    results.append(http.put(f"/uploads/{name}", content=body()).status_code)
                except httpx.TransportError:
                    results.append(-1)  # refused mid-body: the server closed on us

        threads = [threading.Thread(target=send, args=(f"s{n}",)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with server.http() as http:
            listed = http.get("/api/files").json()["files"]
        assert [f["size"] for f in listed] == [2_000_000], results
        assert results.count(201) == 1 and set(results) - {201} <= {413, -1}
    finally:
        servers.close()
