"""The bucket's side of direct transfers, checked (and set where allowed) once at start:

- CORS: the page sends parts with `PUT` from its own origin to the S3 endpoint, another
  origin, and reads each part's `ETag`. So the bucket's CORS rules must allow `PUT`
  from every origin the page is served on, with the headers the page sends, and expose
  `ETag`. If they do not, this node adds one rule of its own (the bucket's other rules
  kept); if the store refuses, direct uploads are off and the note says exactly what
  to set.
- Response overrides: a direct download is a pre-signed GET whose query asks the store
  to answer with our `Content-Type`, `Content-Disposition` and `Cache-Control`. A store
  that ignores them would serve an HTML file inline under its own type, so a probe
  object is fetched once through such a URL; if any header differs, downloads keep
  going through the node.

Each decision is said in words (`Direct.notes`): logged at start, shown to admins.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from app.config import ANY_HOST
from app.storage.s3.store import TRANSPORT_ERRORS, S3Store

# What the page sends with a part's PUT (the part's checksum when it has one, and the
# type a browser may add for a Blob) and must read back from the answer.
PAGE_HEADERS = ("content-type", "x-amz-checksum-sha256")
EXPOSED_HEADERS = ("ETag",)
CORS_METHODS = ("PUT", "GET", "HEAD")
CORS_MAX_AGE_SECONDS = 3600
# Our rule is found (and replaced, its origins merged) by this ID: nodes with other
# public addresses sharing one bucket add their origins rather than drop each other's.
CORS_RULE_ID = "stowage-direct-uploads"
# The probe object's key under the prefix: a dot and a word no blob id can be (blob ids
# are 22 of [A-Za-z0-9_-], app/storage/ids.py), so `stowage check` never lists it.
PROBE_KEY_PREFIX = ".stowage-probe-"
# The error codes a store answers a body whose signed checksum does not match with
# (AWS and SeaweedFS: BadDigest).
DIGEST_ERRORS = ("BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch")
PROBE_BODY = b"stowage checks that this store honours response overrides\n"
PROBE_URL_SECONDS = 60
PROBE_FETCH_SECONDS = 5.0
# The whole start-up check: a store that does not answer must not hold start-up long.
START_CHECK_SECONDS = 15.0
# What a probe's GET asks for: the kind of headers a download sends, with a non-ASCII
# RFC 6266 name, so a store that mangles or drops any of them is caught.
PROBE_OVERRIDES = {
    "content-type": "text/plain; charset=utf-8",
    "content-disposition": "attachment; filename=\"probe.txt\"; filename*=UTF-8''pr%C3%B6be.txt",
    "cache-control": "private, max-age=60",
}


def page_origins(public_url: str, allowed_hosts: Sequence[str]) -> tuple[str, ...]:
    """The origins the page may be loaded from: --public-url's, and each
    --allowed-hosts entry that names a port (http, and https too when --public-url is
    https); `*` when any host is allowed."""
    if ANY_HOST in allowed_hosts:
        return (ANY_HOST,)
    public = urlsplit(public_url)
    schemes = ("http", "https") if public.scheme == "https" else ("http",)
    found = [f"{public.scheme}://{public.netloc.lower()}"]
    for entry in allowed_hosts:
        if urlsplit(f"//{entry}").port is not None:
            found += [f"{scheme}://{entry.lower()}" for scheme in schemes]
    return tuple(dict.fromkeys(found))


def _matches(pattern: str, value: str) -> bool:
    """S3's CORS matching: case-insensitive for headers; at most one `*` wildcard."""
    pattern, value = pattern.lower(), value.lower()
    if "*" not in pattern:
        return pattern == value
    head, _, tail = pattern.partition("*")
    return len(value) >= len(head) + len(tail) and value.startswith(head) and value.endswith(tail)


def _rule_takes(rule: Mapping[str, Any], origin: str) -> bool:
    """Whether the rule answers a preflight of our PUT from `origin` (any of the page's
    headers requested)."""
    origins = rule.get("AllowedOrigins", [])
    allowed_headers = rule.get("AllowedHeaders", [])
    return (
        "PUT" in rule.get("AllowedMethods", [])
        and any(_matches(pattern, origin) for pattern in origins)
        and all(any(_matches(h, header) for h in allowed_headers) for header in PAGE_HEADERS)
    )


def missing_origins(rules: Iterable[Mapping[str, Any]], origins: Sequence[str]) -> list[str]:
    """The origins the page could not send parts from under these rules. S3 answers with
    the first rule that takes the request, so that rule must also expose the ETag."""
    rules = list(rules)
    missing = []
    for origin in origins:
        taking = next((rule for rule in rules if _rule_takes(rule, origin)), None)
        exposed = {header.lower() for header in (taking or {}).get("ExposeHeaders", [])}
        if taking is None or not all(h.lower() in exposed for h in EXPOSED_HEADERS):
            missing.append(origin)
    return missing


def with_our_rule(
    rules: Iterable[Mapping[str, Any]], origins: Sequence[str]
) -> list[dict[str, Any]]:
    """The bucket's rules with ours first (S3 takes the first rule that matches; ours
    matches only our PUT/GET/HEAD with at most our headers, so the others still answer
    everything else). An older rule of ours is replaced, its origins kept."""
    kept: list[dict[str, Any]] = []
    ours_before: list[str] = []
    for rule in rules:
        if rule.get("ID") == CORS_RULE_ID:
            ours_before += list(rule.get("AllowedOrigins", []))
        else:
            kept.append(dict(rule))
    merged = list(dict.fromkeys([*ours_before, *origins]))
    if ANY_HOST in merged:
        merged = [ANY_HOST]
    ours = {
        "ID": CORS_RULE_ID,
        "AllowedMethods": list(CORS_METHODS),
        "AllowedOrigins": merged,
        "AllowedHeaders": list(PAGE_HEADERS),
        "ExposeHeaders": list(EXPOSED_HEADERS),
        "MaxAgeSeconds": CORS_MAX_AGE_SECONDS,
    }
    return [ours, *kept]


def _error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "error"))
    return type(exc).__name__


@dataclass(frozen=True, slots=True)
class Finding:
    """One start-up check's outcome: whether that direction may go direct, and why."""

    ok: bool
    note: str


class BucketSetup:
    """The start-up checks of one bucket, through the store's client."""

    def __init__(self, store: S3Store) -> None:
        self.store = store

    @property
    def client(self) -> Any:
        return self.store.client

    async def cors_rules(self) -> list[dict[str, Any]]:
        """The bucket's CORS rules ([] when it has none)."""
        try:
            answer = await self.client.get_bucket_cors(Bucket=self.store.bucket)
        except ClientError as exc:
            if _error_code(exc) == "NoSuchCORSConfiguration":
                return []
            raise
        return list(answer.get("CORSRules", []))

    async def put_cors_rules(self, rules: list[dict[str, Any]]) -> None:
        await self.client.put_bucket_cors(
            Bucket=self.store.bucket, CORSConfiguration={"CORSRules": rules}
        )

    def paste_command(self, rules: list[dict[str, Any]]) -> str:
        configuration = json.dumps({"CORSRules": rules}, separators=(",", ":"))
        return (
            f"aws s3api put-bucket-cors --bucket {self.store.bucket}"
            f" --cors-configuration '{configuration}'"
        )

    async def check_cors(self, origins: Sequence[str]) -> Finding:
        """Direct uploads need the page's origins allowed: found, set, or refused."""
        shown = ", ".join(origins)
        try:
            rules = await self.cors_rules()
        except TRANSPORT_ERRORS as exc:
            # Rules we cannot read we must not overwrite (they may be someone else's).
            wanted = with_our_rule([], origins)
            return Finding(
                False,
                f"direct uploads off: could not read the bucket's CORS rules"
                f" ({_error_code(exc)}); uploads go through this node. To send parts"
                f" straight to the bucket, add this rule to the bucket's CORS rules"
                f" (keeping any others) and restart: {self.paste_command(wanted)}",
            )
        if not missing_origins(rules, origins):
            return Finding(
                True, f"direct uploads on: the bucket's CORS rules let {shown} send parts"
            )
        wanted = with_our_rule(rules, origins)
        try:
            await self.put_cors_rules(wanted)
            # Read back: a store may accept the call and keep something else.
            still_missing = missing_origins(await self.cors_rules(), origins)
        except TRANSPORT_ERRORS as exc:
            refusal = _error_code(exc)
        else:
            if not still_missing:
                return Finding(
                    True,
                    f"direct uploads on: added CORS rule {CORS_RULE_ID!r} to the bucket"
                    f" for {shown} (PUT, ETag exposed); its other rules were kept",
                )
            refusal = f"the rules read back do not allow {', '.join(still_missing)}"
        return Finding(
            False,
            f"direct uploads off: the bucket's CORS rules do not let {shown} send parts"
            f" (PUT with the ETag exposed) and this node could not set them ({refusal});"
            f" uploads go through this node meanwhile. Set them (this keeps the bucket's"
            f" other rules) and restart: {self.paste_command(wanted)}",
        )

    async def check_overrides(self) -> Finding:
        """Direct downloads need the GET URL's response overrides honoured: a probe
        object is put, fetched through such a URL, compared, and removed."""
        key = f"{self.store.prefix}{PROBE_KEY_PREFIX}{secrets.token_hex(8)}"
        bucket = self.store.bucket
        try:
            await self.client.put_object(Bucket=bucket, Key=key, Body=PROBE_BODY)
            try:
                url = await self.client.generate_presigned_url(
                    "get_object",
                    Params={
                        "Bucket": bucket,
                        "Key": key,
                        "ResponseContentType": PROBE_OVERRIDES["content-type"],
                        "ResponseContentDisposition": PROBE_OVERRIDES["content-disposition"],
                        "ResponseCacheControl": PROBE_OVERRIDES["cache-control"],
                    },
                    ExpiresIn=PROBE_URL_SECONDS,
                )
                status, headers, body = await asyncio.to_thread(fetch, url)
            finally:
                await self.client.delete_object(Bucket=bucket, Key=key)
        except TRANSPORT_ERRORS as exc:  # urllib's errors are OSErrors
            return Finding(
                False,
                f"direct downloads off: could not probe the store's response overrides"
                f" ({_error_code(exc)}); downloads go through this node",
            )
        if status != 200 or body != PROBE_BODY:
            return Finding(
                False,
                f"direct downloads off: a pre-signed GET with response overrides was"
                f" answered {status}; downloads go through this node",
            )
        differing = [
            name
            for name, wanted in PROBE_OVERRIDES.items()
            if _normal(headers.get(name)) != _normal(wanted)
        ]
        if differing:
            got = "; ".join(f"{name}: {headers.get(name)!r}" for name in differing)
            return Finding(
                False,
                f"direct downloads off: the store does not honour response overrides"
                f" ({got}); downloads go through this node",
            )
        return Finding(True, "direct downloads on: the store honours response overrides")

    async def check_signed_checksums(self) -> Finding:
        """Whether the store refuses a part whose SHA-256 is not the one its pre-signed
        URL signed, and takes one whose SHA-256 is: probed the way direct uploads send
        (a part of a multipart upload that declared SHA-256 checksums). Only then is a
        declared sha256 of a one-part file taken as the store's own check (no read-back,
        app/resumable/direct.py); moto, for one, takes any body."""
        key = f"{self.store.prefix}{PROBE_KEY_PREFIX}{secrets.token_hex(8)}"
        bucket = self.store.bucket
        right = base64.b64encode(hashlib.sha256(PROBE_BODY).digest()).decode()
        wrong = base64.b64encode(hashlib.sha256(b"not the probe").digest()).decode()
        try:
            started = await self.client.create_multipart_upload(
                Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256"
            )
            upload_id = started["UploadId"]
            try:
                answers = []
                for number, digest in ((1, wrong), (2, right)):
                    url = await self.client.generate_presigned_url(
                        "upload_part",
                        Params={
                            "Bucket": bucket, "Key": key, "UploadId": upload_id,
                            "PartNumber": number, "ContentLength": len(PROBE_BODY),
                            "ChecksumSHA256": digest,
                        },
                        ExpiresIn=PROBE_URL_SECONDS,
                    )  # fmt: skip
                    answers.append(
                        await asyncio.to_thread(
                            put, url, PROBE_BODY, {"x-amz-checksum-sha256": digest}
                        )
                    )
            finally:
                await self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except TRANSPORT_ERRORS as exc:
            return Finding(
                False,
                f"could not probe whether the store checks signed SHA-256 digests"
                f" ({_error_code(exc)}): every direct upload's sha256 is read back",
            )
        (wrong_status, wrong_body), (right_status, _) = answers
        refused = wrong_status == 400 and any(code in wrong_body for code in DIGEST_ERRORS)
        if refused and right_status == 200:
            return Finding(
                True,
                "the store refuses a part whose SHA-256 is not the signed one: a one-part"
                " direct upload with a declared sha256 needs no read-back",
            )
        return Finding(
            False,
            f"the store answered {wrong_status} to a part whose SHA-256 is not the signed"
            f" one and {right_status} to one whose is: every direct upload's sha256 is read"
            " back by the node",
        )


def _normal(value: str | None) -> str | None:
    """Header values compared as a store may rewrite them: case and spaces aside."""
    return None if value is None else "".join(value.split()).lower()


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    """A plain GET (run on a thread): status, headers by lowercase name, body."""
    request = urllib.request.Request(url, method="GET")
    try:
        with urllib.request.urlopen(request, timeout=PROBE_FETCH_SECONDS) as answer:
            return answer.status, _headers(answer.headers), answer.read(64 * 1024)
    except urllib.error.HTTPError as exc:
        return exc.code, _headers(exc.headers), exc.read(64 * 1024)


def put(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """A plain PUT (run on a thread): the status and the start of the answer's body."""
    request = urllib.request.Request(url, data=body, method="PUT", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=PROBE_FETCH_SECONDS) as answer:
            return int(answer.status), answer.read(4096).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(4096).decode(errors="replace")


def _headers(message: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in message.items()}
