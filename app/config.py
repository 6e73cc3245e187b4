"""Every setting Stowage has, and the only place that reads the environment.

A setting comes from its command-line flag, else its `STOWAGE_*` variable,
else the embedded default, so `stowage serve` runs with no set-up at all.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

MiB = 1024 * 1024
GiB = 1024 * MiB
# Stario keeps the body cap in a signed 32-bit int; one byte more is refused.
STARIO_MAX_BODY_BYTES = 2_147_483_647
# A file is many requests long when it is resumable; 2^53 keeps every size exact in
# JavaScript's numbers, far above any disk.
MAX_FILE_BYTES = 2**53
LOG_FORMATS = ("json", "tty", "off")


class ConfigError(ValueError):
    """A setting has a value Stowage cannot run with; the message names it."""


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            raise ConfigError(f"must be a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"must be between {low} and {high}, got {value}")
        return value

    return parse


def _seconds_up_to(high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"must be a number of seconds, got {text!r}") from None
        if not 0 < value <= high:
            raise ConfigError(f"must be more than 0 and at most {high:g} seconds, got {text}")
        return value

    return parse


_seconds = _seconds_up_to(86_400)


def _database(text: str) -> str:
    if not text.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            "must be a postgresql:// URL (leave it unset for the SQLite file in the data dir),"
            f" got {text!r}"
        )
    return text


def _non_empty(text: str) -> str:
    if not text.strip():
        raise ConfigError("must not be empty")
    return text


# Every size a flag, variable or the quota field takes, said once: --help and the
# errors quote it. Decimal units are powers of 1000 and binary ones powers of 1024, as
# the standards (SI, IEC) define them; a bare K/M/G/T is decimal too.
SIZE_FORMS = (
    "a number of bytes (1048576) or a size such as 10KB, 10MB, 10GB, 10TB (powers of 1000) or"
    " 10KiB, 10MiB, 10GiB, 10TiB (powers of 1024); any case, a space allowed,"
    " 1.5GB rounds down to whole bytes"
)
_SIZE_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4,
               "ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4}  # fmt: skip
_SIZE = re.compile(r"\s*\+?([0-9][0-9_]*(?:\.[0-9]+)?|\.[0-9]+)\s*([a-z]*)\s*")
# Far above any disk, and below every integer column the catalogs keep sizes in.
LARGEST_SIZE = 2**62


def parse_size(text: str, *, also: str = "") -> int:
    """A number of bytes in any of SIZE_FORMS, 0 included; `also` names the words the
    caller takes besides (", or none for no limit") so the error lists every form."""
    match = _SIZE.fullmatch(text.lower())
    unit = match.group(2) if match else ""
    unit = unit.removesuffix("b")
    if match is None or unit not in _SIZE_UNITS:
        raise ConfigError(f"must be {SIZE_FORMS}{also}; got {text!r}")
    # Decimal, not float: 4.35MB is 4350000 bytes exactly, never 4349999.
    value = int(Decimal(match.group(1).replace("_", "")) * _SIZE_UNITS[unit])
    if value > LARGEST_SIZE:
        raise ConfigError(f"must be at most {LARGEST_SIZE} bytes; got {text!r}")
    return value


def parse_bytes(text: str, *, also: str = "") -> int:
    """A size of at least one byte (SIZE_FORMS)."""
    value = parse_size(text, also=also)
    if value == 0:
        raise ConfigError(f"must be more than 0 bytes{also}; got {text!r}")
    return value


def _size_between(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = parse_size(text)
        if not low <= value <= high:
            raise ConfigError(f"must be between {low} and {high} bytes, got {value} ({text!r})")
        return value

    return parse


def _bytes_or_zero(text: str) -> int:
    """Bytes, or 0 to turn the check off."""
    return parse_size(text)


def _quota(text: str) -> int | None:
    """Bytes, or `none` for no quota."""
    if text.strip().lower() == "none":
        return None
    return parse_bytes(text, also=", or none for no limit")


def _rate(text: str) -> int:
    """Bytes per second, or 0 (or `off`) for no minimum."""
    if text.strip().lower() == "off":
        return 0
    return parse_size(text, also=", or off (or 0) for no minimum")


def _limit_or_none(high: int) -> Callable[[str], int]:
    """A whole number from 0 to `high`; 0 or `none` means no limit."""
    count = _int_between(0, high)

    def parse(text: str) -> int:
        return 0 if text.strip().lower() == "none" else count(text)

    return parse


def _public_url(text: str) -> str:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"must be an http:// or https:// address, got {text!r}")
    if parts.query or parts.fragment or parts.path not in ("", "/"):
        raise ConfigError(f"must be just scheme, host and port (no path), got {text!r}")
    return f"{parts.scheme}://{parts.netloc}"


def _addresses(text: str) -> frozenset[str]:
    """Comma-separated IP addresses (what a reverse proxy connects from)."""
    found = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            found.add(str(ipaddress.ip_address(part)))
        except ValueError:
            raise ConfigError(f"must be IP addresses separated by commas, got {part!r}") from None
    return frozenset(found)


ANY_HOST = "*"


def _host_entry(text: str) -> str:
    """One allowed `Host`: `name`, `name:port`, `[v6]`, `[v6]:port` (lowercased), or `*`."""
    entry = text.strip().lower().rstrip(".")
    if entry == ANY_HOST:
        return entry
    if not re.fullmatch(r"[a-z0-9._\-\[\]:]+", entry):
        raise ConfigError(f"must list hosts such as example.org or 127.0.0.1:8000, got {text!r}")
    parts = urlsplit(f"//{entry}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        not parts.hostname
        or port == -1
        or parts.username is not None
        or parts.path
        or parts.query
        or parts.fragment
        or entry.endswith(":")
    ):
        raise ConfigError(f"must list hosts such as example.org or 127.0.0.1:8000, got {text!r}")
    return entry


def _allowed_hosts(text: str) -> tuple[str, ...]:
    entries = tuple(_host_entry(part) for part in text.split(",") if part.strip())
    if not entries:
        raise ConfigError("must name at least one host (or * for any)")
    return entries


def _origin_entry(text: str) -> str:
    """One origin as a browser sends it in `Origin`: `scheme://host[:port]`, lowercased,
    the scheme's default port dropped. `*` and `null` are refused: each web app an
    admin trusts with API tokens is named, and an opaque origin (a sandboxed frame,
    a file:// page) could be any page at all."""
    entry = text.strip().lower().removesuffix("/")
    parts = urlsplit(entry)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or port == -1
        or parts.username is not None
        or parts.path
        or parts.query
        or parts.fragment
        or entry.endswith(":")
        or not re.fullmatch(r"[a-z0-9._\-\[\]:]+", parts.netloc)
    ):
        raise ConfigError(
            "must list origins such as https://app.example.org or http://127.0.0.1:5173"
            f" (scheme, host and port only; * is not accepted), got {text.strip()!r}"
        )
    if (parts.scheme, port) in (("http", 80), ("https", 443)):
        return f"{parts.scheme}://{parts.netloc.rsplit(':', 1)[0]}"
    return f"{parts.scheme}://{parts.netloc}"


def _cors_origins(text: str) -> tuple[str, ...]:
    """Comma-separated origins; empty (the default) for none."""
    return tuple(dict.fromkeys(_origin_entry(part) for part in text.split(",") if part.strip()))


@dataclass(frozen=True, slots=True)
class StorageTarget:
    """Where blobs live: `local` (the data dir) or an S3 bucket and key prefix."""

    kind: str  # "local" or "s3"
    bucket: str = ""
    prefix: str = ""  # "" or ending in "/"


LOCAL_STORAGE = StorageTarget("local")
# S3's own rules for bucket names (3-63 of a-z 0-9 . -, starting and ending alnum).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _storage(text: str) -> StorageTarget:
    text = text.strip()
    if text == "local":
        return LOCAL_STORAGE
    bucket, _, prefix = text.removeprefix("s3://").partition("/")
    if not text.startswith("s3://") or not _BUCKET.fullmatch(bucket):
        raise ConfigError(f"must be local or s3://BUCKET[/PREFIX], got {text!r}")
    prefix = prefix.strip("/")
    if prefix and not re.fullmatch(r"[A-Za-z0-9!_.*'()/-]{1,512}", prefix):
        raise ConfigError(f"the key prefix may use letters, digits and !_.*'()/- only: {text!r}")
    return StorageTarget("s3", bucket, f"{prefix}/" if prefix else "")


def _endpoint_url(text: str) -> str:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ConfigError(f"must be an http:// or https:// address, got {text!r}")
    return text.strip().rstrip("/")


S3_DIRECT_MODES = ("none", "uploads", "all")


def _s3_direct(text: str) -> str:
    text = text.strip().lower()
    if text not in S3_DIRECT_MODES:
        raise ConfigError(f"must be one of {', '.join(S3_DIRECT_MODES)}, got {text!r}")
    return text


def _log_format(text: str) -> str:
    if text not in LOG_FORMATS:
        raise ConfigError(f"must be one of {', '.join(LOG_FORMATS)}, got {text!r}")
    return text


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: its flag is `--` + name with dashes, its variable STOWAGE_ + NAME."""

    name: str
    default: str | None
    parse: Callable[[str], object]
    help: str

    @property
    def is_size(self) -> bool:
        """Takes SIZE_FORMS (the settings named *_bytes, the quota and the rate)."""
        return self.name.endswith("_bytes") or self.name in ("default_quota", "min_upload_rate")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "STOWAGE_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "127.0.0.1", _non_empty, "address to listen on"),
    Setting("port", "8000", _int_between(1, 65_535), "TCP port to listen on"),
    Setting("data_dir", "var", _non_empty, "where uploads/ and stowage.db live"),
    Setting(
        "database",
        None,
        _database,
        "the catalog (accounts, files, links, upload state): a postgresql://USER@HOST:PORT/DB"
        " URL, shared by every Stowage process given it; default the SQLite file"
        " stowage.db in the data dir",
    ),
    Setting(
        "max_request_body_bytes",
        str(GiB),
        _size_between(1, STARIO_MAX_BODY_BYTES),
        "largest request body the server reads (Stario's hard limit is 2147483647)",
    ),
    Setting(
        "max_request_header_bytes",
        str(64 * 1024),
        _size_between(256, 16 * MiB),
        "largest request head (request line and headers)",
    ),
    Setting(
        "body_timeout",
        "30",
        _seconds,
        "seconds a request body may stall (no bytes arriving) before it is dropped",
    ),
    Setting(
        "max_file_bytes",
        str(64 * GiB),
        _size_between(1, MAX_FILE_BYTES),
        "largest single file; above --max-request-body-bytes only resumable uploads"
        " (tus, the IETF draft) can carry it, in several requests",
    ),
    Setting(
        "max_signals_bytes",
        str(16 * MiB),
        _size_between(1, STARIO_MAX_BODY_BYTES),
        "largest JSON (Datastar file signals) upload body",
    ),
    Setting(
        "signals_memory_bytes",
        str(64 * MiB),
        _size_between(MiB, STARIO_MAX_BODY_BYTES),
        "memory all JSON file-signal bodies together may take at once; beyond it a"
        " request waits a few seconds, then gets 503 with Retry-After",
    ),
    Setting(
        "archive_memory_bytes",
        str(64 * MiB),
        _size_between(4 * MiB, 2**40),
        "memory the ZIP archives (POST /api/archives) may hold together, each account a"
        " quarter of it; beyond it the least recently used give way (laid out again when"
        " asked for); when downloads hold it all, a new archive gets 503 with Retry-After",
    ),
    Setting(
        "min_free_bytes",
        None,
        _bytes_or_zero,
        "free space uploads always leave on the data dir's filesystem, so the catalog"
        " can still commit and delete (507 beyond it; 0 turns it off);"
        " default a twentieth of the filesystem, at most 1GiB, computed at start",
    ),
    Setting(
        "public_url",
        None,
        _public_url,
        "the address people reach, e.g. https://files.example.org behind a TLS proxy;"
        " used in links and the setup link, and makes cookies Secure when https;"
        " default http://HOST:PORT",
    ),
    Setting(
        "trusted_proxies",
        "",
        _addresses,
        "addresses of reverse proxies whose X-Forwarded-For names the client"
        " (comma-separated, e.g. 127.0.0.1); default none",
    ),
    Setting(
        "allowed_hosts",
        None,
        _allowed_hosts,
        "comma-separated Host header values the server answers (NAME or NAME:PORT; a"
        " name without a port matches any port; * for any); others get 421, which"
        " defeats DNS rebinding; default the listen address and port, localhost with"
        " the port, and the host of --public-url",
    ),
    Setting(
        "cors_origins",
        "",
        _cors_origins,
        "comma-separated origins (scheme://host[:port]) of web apps on other sites that"
        " may call the API, raw uploads, tus and file downloads with an API token"
        " (Authorization header; cookies are never honoured cross-origin); default none",
    ),
    Setting(
        "default_quota",
        "none",
        _quota,
        "bytes each account may store unless it has its own quota (e.g. 10GiB), or none",
    ),
    Setting(
        "upload_expiry",
        str(24 * 3600),
        _seconds_up_to(366 * 86_400),
        "seconds an unfinished resumable upload is kept after its last append; then its"
        " bytes are removed and its space given back",
    ),
    Setting(
        "session_idle",
        str(14 * 86_400),
        _seconds_up_to(366 * 86_400),
        "seconds a sign-in lasts without being used",
    ),
    Setting(
        "session_lifetime",
        str(30 * 86_400),
        _seconds_up_to(366 * 86_400),
        "seconds a sign-in lasts at most, however often it is used",
    ),
    Setting(
        "min_upload_rate",
        "10KiB",
        _rate,
        "slowest upload allowed, in bytes per second averaged over the window (e.g. 10KiB);"
        " a slower upload ends with 408 and nothing kept; 0 turns the check off",
    ),
    Setting(
        "min_upload_rate_window",
        "30",
        _seconds_up_to(3600),
        "seconds over which the upload rate is averaged",
    ),
    Setting(
        "min_upload_rate_grace",
        "10",
        _seconds_up_to(3600),
        "seconds at the start of an upload before its rate is judged",
    ),
    Setting(
        "max_connections",
        None,
        _int_between(1, 1_000_000),
        "open connections at most; more are refused at once with 503;"
        " default half the open-file limit less 64",
    ),
    Setting(
        "max_connections_per_address",
        None,
        _limit_or_none(1_000_000),
        "open connections from one client address at most; more are refused at once"
        " with 429; 0 or none for no limit (behind a proxy, all clients share its"
        " address); default an eighth of the connection cap, at least 8",
    ),
    Setting(
        "shutdown_timeout",
        "30",
        _seconds_up_to(3600),
        "seconds a stop (SIGTERM, Ctrl-C) waits for uploads in flight before ending them",
    ),
    Setting(
        "max_live_pages_per_account",
        "20",
        _int_between(1, 100_000),
        "live page streams (GET /live) one account may have open at once; one more"
        " opens, and the oldest stops updating with a notice and a Reload button",
    ),
    Setting(
        "thumbnail_workers",
        "1",
        _int_between(1, 64),
        "worker processes that make thumbnails (each one job at a time)",
    ),
    Setting(
        "thumbnail_seconds",
        "10",
        _seconds_up_to(3600),
        "seconds one thumbnail may take; past it the worker is killed and the image"
        " gets no thumbnail",
    ),
    Setting(
        "log",
        None,
        _log_format,
        "request log: json (one line per request), tty (colour, for a terminal) or off;"
        " default tty on a terminal, else json",
    ),
    Setting(
        "storage",
        "local",
        _storage,
        "where file contents live: local (uploads/ in the data dir) or"
        " s3://BUCKET[/PREFIX] (an S3-compatible object store; credentials and region"
        " from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION)",
    ),
    Setting(
        "s3_endpoint_url",
        None,
        _endpoint_url,
        "the S3 service's address, e.g. http://127.0.0.1:8333 for SeaweedFS or MinIO;"
        " default AWS itself",
    ),
    Setting(
        "s3_public_endpoint_url",
        None,
        _endpoint_url,
        "the S3 service's address as browsers and API clients reach it, when it is not"
        " --s3-endpoint-url (nodes reaching the store by an internal name): the URLs of"
        " direct transfers are signed for it; default --s3-endpoint-url",
    ),
    Setting(
        "s3_direct",
        "all",
        _s3_direct,
        "on S3 storage, which file bytes go straight between the browser (or an API"
        " client) and the bucket, through short-lived pre-signed URLs the node signs and"
        " then checks: all (uploads and downloads), uploads, or none (every byte through"
        " the node); see docs/direct-transfers.md",
    ),
)

# Read for S3 storage under their standard names (not STOWAGE_*), as every S3 tool does.
S3_CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")
DEFAULT_S3_REGION = "us-east-1"


@dataclass(frozen=True, slots=True)
class S3Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    region: str


@dataclass(frozen=True, slots=True)
class Config:
    host: str
    port: int
    data_dir: Path
    # None: the SQLite file `db_path`; else a postgresql:// URL.
    database: str | None
    max_request_body_bytes: int
    max_request_header_bytes: int
    body_timeout: float
    max_file_bytes: int
    max_signals_bytes: int
    signals_memory_bytes: int
    archive_memory_bytes: int
    min_free_bytes: int | None
    public_url: str
    trusted_proxies: frozenset[str]
    allowed_hosts: tuple[str, ...]
    default_quota: int | None
    upload_expiry: float
    session_idle: float
    session_lifetime: float
    min_upload_rate: int
    min_upload_rate_window: float
    min_upload_rate_grace: float
    max_connections: int | None
    max_connections_per_address: int | None
    shutdown_timeout: float
    thumbnail_workers: int
    thumbnail_seconds: float
    log: str
    storage: StorageTarget = LOCAL_STORAGE
    s3_endpoint_url: str | None = None
    s3_credentials: S3Credentials | None = None
    s3_direct: str = "all"
    s3_public_endpoint_url: str | None = None
    max_live_pages_per_account: int = 20
    # Origins of web apps on other sites allowed to call with a token (app/server/cors.py).
    cors_origins: tuple[str, ...] = ()

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def db_path(self) -> Path:
        return self.data_dir / "stowage.db"

    @classmethod
    def load(
        cls,
        flags: Mapping[str, str | None] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        stdout_is_tty: bool = False,
    ) -> Config:
        """Resolve every setting: flag, then environment, then default."""
        env = os.environ if environ is None else environ
        given = flags or {}
        values: dict[str, object] = {}
        for setting in SETTINGS:
            raw, source = given.get(setting.name), setting.flag
            if raw is None:
                raw, source = env.get(setting.env), setting.env
            if raw is None:
                raw, source = setting.default, "the default"
            try:
                values[setting.name] = None if raw is None else setting.parse(raw)
            except ConfigError as exc:
                raise ConfigError(f"{source} {exc}") from None
        if values["public_url"] is None:
            host = str(values["host"])
            host = f"[{host}]" if ":" in host else host
            values["public_url"] = f"http://{host}:{values['port']}"
        if values["allowed_hosts"] is None:
            values["allowed_hosts"] = default_allowed_hosts(
                str(values["host"]), int(str(values["port"])), str(values["public_url"])
            )
        if values["log"] is None:
            values["log"] = "tty" if stdout_is_tty else "json"
        values["data_dir"] = Path(str(values["data_dir"]))
        if values["storage"] != LOCAL_STORAGE:
            values["s3_credentials"] = s3_credentials(env)
        return cls(**values)  # type: ignore[arg-type]


def s3_credentials(env: Mapping[str, str]) -> S3Credentials:
    key, secret, region = (env.get(name, "").strip() for name in S3_CREDENTIAL_VARIABLES)
    if not key or not secret:
        raise ConfigError(
            "--storage s3://... needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the"
            " environment (the S3 access key and its secret)"
        )
    return S3Credentials(key, secret, region or DEFAULT_S3_REGION)


def default_allowed_hosts(host: str, port: int, public_url: str) -> tuple[str, ...]:
    """The listen address and localhost, with the port, and --public-url's host."""
    listen = f"[{host}]" if ":" in host else host
    public = urlsplit(public_url).netloc
    found = (f"{listen}:{port}".lower(), f"localhost:{port}", public.lower())
    return tuple(dict.fromkeys(found))


def uv_executable() -> str | None:
    """The uv binary that launched us (uv run sets UV), used to fetch the Datastar bundle."""
    return os.environ.get("UV")
