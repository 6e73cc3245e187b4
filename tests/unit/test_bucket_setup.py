"""The start-up checks of the bucket's side of direct transfers
(app/storage/s3/bucket_setup.py), without a store: which origins the page has, when
CORS rules let it send parts, how our rule joins the bucket's own, and what a node
says and decides when the store refuses to set CORS or does not answer."""

import asyncio
import json
import shlex
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from app.config import Config, StorageTarget
from app.storage import backends
from app.storage.s3 import bucket_setup
from app.storage.s3.bucket_setup import (
    CORS_RULE_ID,
    BucketSetup,
    missing_origins,
    page_origins,
    with_our_rule,
)
from app.storage.s3.store import S3Store

PAGE = "http://files.example:8000"


def rule(**fields: Any) -> dict[str, Any]:
    base = {
        "AllowedMethods": ["PUT"],
        "AllowedOrigins": [PAGE],
        "AllowedHeaders": ["content-type", "x-amz-checksum-sha256"],
        "ExposeHeaders": ["ETag"],
    }
    return {**base, **fields}


def test_the_pages_origins() -> None:
    assert page_origins("http://127.0.0.1:8000", ("127.0.0.1:8000", "localhost:8000")) == (
        "http://127.0.0.1:8000",
        "http://localhost:8000",
    )
    # An https public address: allowed hosts with a port may be reached either way;
    # one without a port is the public address's own host (its origin is listed).
    assert page_origins("https://files.example", ("files.example", "10.0.0.5:8000")) == (
        "https://files.example",
        "http://10.0.0.5:8000",
        "https://10.0.0.5:8000",
    )
    assert page_origins("https://files.example", ("*",)) == ("*",)


def test_rules_that_let_the_page_send_parts() -> None:
    assert missing_origins([rule()], [PAGE]) == []
    assert missing_origins([rule(AllowedOrigins=["*"], AllowedHeaders=["*"])], [PAGE]) == []
    assert missing_origins([rule(AllowedOrigins=["http://*.example:8000"])], [PAGE]) == []
    # Header names are case-insensitive in S3's matching.
    assert missing_origins([rule(ExposeHeaders=["etag"])], [PAGE]) == []
    assert missing_origins([], [PAGE]) == [PAGE]
    assert missing_origins([rule(AllowedMethods=["GET"])], [PAGE]) == [PAGE]
    assert missing_origins([rule(ExposeHeaders=[])], [PAGE]) == [PAGE]
    assert missing_origins([rule(AllowedHeaders=["content-type"])], [PAGE]) == [PAGE]
    assert missing_origins([rule()], [PAGE, "http://other:8000"]) == ["http://other:8000"]
    # S3 answers with the first rule that takes the request: a rule before ours that
    # takes our PUT but hides the ETag wins.
    assert missing_origins([rule(ExposeHeaders=[]), rule()], [PAGE]) == [PAGE]


def test_our_rule_goes_first_and_keeps_the_others() -> None:
    foreign = {"AllowedMethods": ["GET"], "AllowedOrigins": ["https://cdn.example"]}
    older_ours = rule(ID=CORS_RULE_ID, AllowedOrigins=["http://node-b:8000"])
    merged = with_our_rule([foreign, older_ours], [PAGE])
    assert merged[1:] == [foreign]
    ours = merged[0]
    assert ours["ID"] == CORS_RULE_ID
    # Another node's origin, set by it earlier on the same bucket, stays.
    assert ours["AllowedOrigins"] == ["http://node-b:8000", PAGE]
    assert ours["AllowedMethods"] == ["PUT", "GET", "HEAD"]
    assert ours["ExposeHeaders"] == ["ETag"]
    assert missing_origins(merged, [PAGE, "http://node-b:8000"]) == []
    assert with_our_rule([older_ours], ["*"])[0]["AllowedOrigins"] == ["*"]


def refusal(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "no"}}, operation)


class RefusingClient:
    """A bucket with a foreign rule whose identity may read CORS but not set it."""

    def __init__(self) -> None:
        self.rules = [{"AllowedMethods": ["GET"], "AllowedOrigins": ["https://cdn.example"]}]

    async def get_bucket_cors(self, Bucket: str) -> dict[str, Any]:  # noqa: N803
        return {"CORSRules": self.rules}

    async def put_bucket_cors(self, **_: Any) -> None:
        raise refusal("AccessDenied", "PutBucketCors")


class SilentClient(RefusingClient):
    """A store that says yes to put_bucket_cors and keeps nothing."""

    async def put_bucket_cors(self, **_: Any) -> None:
        return None


class HangingClient:
    """A store that accepts connections and never answers."""

    def __getattr__(self, name: str) -> Any:
        async def hang(*_: Any, **__: Any) -> None:
            await asyncio.sleep(3600)

        return hang


def s3_store(tmp_path: Path, client: Any) -> S3Store:
    from app.config import S3Credentials

    store = S3Store(
        StorageTarget("s3", "stowage", "p/"),
        S3Credentials("k", "s", "us-east-1"),
        endpoint_url="http://127.0.0.1:9",
        local_root=tmp_path,
    )
    store._client = client
    return store


async def test_a_store_that_refuses_cors_turns_direct_uploads_off(tmp_path: Path) -> None:
    client = RefusingClient()
    found = await BucketSetup(s3_store(tmp_path, client)).check_cors([PAGE])
    assert not found.ok
    assert found.note.startswith("direct uploads off:")
    assert "(AccessDenied)" in found.note
    assert "uploads go through this node meanwhile" in found.note
    # The command in the note is one an operator can paste: our rule and the bucket's.
    command = shlex.split(found.note.split("restart: ", 1)[1])
    assert command[:5] == ["aws", "s3api", "put-bucket-cors", "--bucket", "stowage"]
    pasted = json.loads(command[command.index("--cors-configuration") + 1])["CORSRules"]
    assert pasted[1:] == client.rules
    assert missing_origins(pasted, [PAGE]) == []


async def test_a_store_that_keeps_nothing_is_caught_by_reading_back(tmp_path: Path) -> None:
    found = await BucketSetup(s3_store(tmp_path, SilentClient())).check_cors([PAGE])
    assert not found.ok
    assert f"the rules read back do not allow {PAGE}" in found.note


async def test_a_store_that_does_not_answer_leaves_every_byte_proxied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bucket_setup, "START_CHECK_SECONDS", 0.2)
    config = Config.load(
        {"data_dir": str(tmp_path), "storage": "s3://stowage/p"},
        environ={"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"},
    )
    direct = await backends.open_direct(config, s3_store(tmp_path, HangingClient()))
    assert (direct.uploads, direct.downloads) == (False, False)
    assert direct.bucket is not None
    (note,) = direct.notes
    assert "did not answer the start-up checks" in note
    assert "every byte goes through this node" in note


async def test_uploads_only_skips_the_download_probe(tmp_path: Path) -> None:
    config = Config.load(
        {"data_dir": str(tmp_path), "storage": "s3://stowage/p", "s3_direct": "uploads"},
        environ={"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"},
    )
    direct = await backends.open_direct(config, s3_store(tmp_path, RefusingClient()))
    assert (direct.uploads, direct.downloads) == (False, False)
    (note,) = direct.notes
    assert note.startswith("direct uploads off:")


class ProbeClient:
    """A store whose GET URLs point at `url`; records what was put and removed."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.objects: set[str] = set()

    async def put_object(self, Bucket: str, Key: str, Body: bytes) -> None:  # noqa: N803
        self.objects.add(Key)

    async def delete_object(self, Bucket: str, Key: str) -> None:  # noqa: N803
        self.objects.discard(Key)

    async def generate_presigned_url(self, operation: str, **_: Any) -> str:
        return self.url


@contextmanager
def answering(status: int, headers: dict[str, str]) -> Iterator[str]:
    """A local HTTP server that answers every GET with the probe's body so."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(bucket_setup.PROBE_BODY)))
            self.end_headers()
            self.wfile.write(bucket_setup.PROBE_BODY)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/probe"
    finally:
        server.shutdown()
        server.server_close()


HONOURED = {
    "Content-Type": "text/plain;charset=UTF-8",  # rewritten in case and spacing: fine
    "Content-Disposition": bucket_setup.PROBE_OVERRIDES["content-disposition"],
    "Cache-Control": "private, max-age=60",
}


@pytest.mark.parametrize(
    ("status", "changed", "verdict"),
    [
        (200, {}, "direct downloads on"),
        (200, {"Content-Type": "application/octet-stream"}, "does not honour response overrides"),
        (200, {"Content-Disposition": 'attachment; filename="probe.txt"'}, "does not honour"),
        (200, {"Cache-Control": "no-cache"}, "does not honour"),
        (403, {}, "answered 403"),
    ],
)
async def test_the_overrides_probe(
    tmp_path: Path, status: int, changed: dict[str, str], verdict: str
) -> None:
    with answering(status, {**HONOURED, **changed}) as url:
        client = ProbeClient(url)
        found = await BucketSetup(s3_store(tmp_path, client)).check_overrides()
    assert found.ok == (verdict == "direct downloads on")
    assert verdict in found.note
    if not found.ok:
        assert found.note.endswith("downloads go through this node")
    assert client.objects == set()  # the probe object is removed whatever the verdict


def test_the_admin_screens_line(tmp_path: Path) -> None:
    from app.features.admin.handlers import direct_words
    from app.storage.direct import PROXIED, Direct

    def config(**flags: str) -> Config:
        return Config.load(
            {"data_dir": str(tmp_path), **flags},
            environ={"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"},
        )

    on_s3 = {"storage": "s3://stowage/p"}
    assert direct_words(config(), PROXIED) == "off (local storage)"
    assert direct_words(config(**on_s3, s3_direct="none"), PROXIED) == "off (--s3-direct none)"
    both = Direct(None, uploads=True, downloads=True)
    assert direct_words(config(**on_s3), both) == (
        "uploads straight to the bucket; downloads straight from the bucket"
    )
    uploads_only = Direct(None, uploads=True, downloads=False)
    assert direct_words(config(**on_s3, s3_direct="uploads"), uploads_only) == (
        "uploads straight to the bucket; downloads through this node"
    )
    assert direct_words(config(**on_s3), uploads_only).endswith("(the start-up log says why)")
