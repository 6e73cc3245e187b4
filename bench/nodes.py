"""Two Stowage nodes acting as one, for the suites that measure across nodes: one
throwaway PostgreSQL catalog and one prefix of a SeaweedFS bucket, one account made
on the first (the catalog is shared, so the second takes its token)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.harness import (
    ACCOUNT_NAME,
    ACCOUNT_PASSWORD,
    ROOT,
    Server,
    _app_cli,
    free_port,
    start_all,
    stop_all,
)


class NodesUnavailable(Exception):
    pass


@contextmanager
def two_nodes(weed, work: Path, prefix: str) -> Iterator[tuple[Server, Server]]:  # noqa: ANN001
    """Nodes A and B over `weed` (a started tests.support.seaweed.Seaweed) and a fresh
    PostgreSQL cluster; NodesUnavailable when PostgreSQL is missing."""
    from tests.support.postgres import Cluster, PostgresMissing

    try:
        cluster = Cluster()
    except PostgresMissing as exc:
        raise NodesUnavailable(str(exc)) from None
    nodes: list[Server] = []
    try:
        database = cluster.new_database()
        common = ("--log", "off", "--database", database,
                  "--storage", f"s3://{weed.bucket}/{prefix}",
                  "--s3-endpoint-url", weed.endpoint_url)  # fmt: skip
        first_dir = work / "node-a"
        _app_cli(ROOT, "users", "add", ACCOUNT_NAME, "--admin", "--data-dir", str(first_dir),
                 "--database", database, stdin=ACCOUNT_PASSWORD + "\n")  # fmt: skip
        token = _app_cli(ROOT, "tokens", "add", ACCOUNT_NAME, "--data-dir",
                         str(first_dir), "--database", database).strip()  # fmt: skip
        for label, data_dir in (("node A", first_dir), ("node B", work / "node-b")):
            port = free_port()
            argv = [sys.executable, "-m", "app.cli", "serve", "--port", str(port),
                    "--data-dir", str(data_dir), *common]  # fmt: skip
            nodes.append(Server(label, argv, port, cwd=ROOT, env=weed.env, token=token))
        start_all(nodes)
        yield nodes[0], nodes[1]
    finally:
        stop_all(nodes)
        cluster.close()
