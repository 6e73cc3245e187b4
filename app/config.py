"""Every setting Stowage has, and the only place that reads the environment.

A setting comes from its command-line flag, else its `STOWAGE_*` variable,
else the embedded default, so `stowage serve` runs with no set-up at all.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

MiB = 1024 * 1024
GiB = 1024 * MiB
# Stario keeps the body cap in a signed 32-bit int; one byte more is refused.
STARIO_MAX_BODY_BYTES = 2_147_483_647
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


def _non_empty(text: str) -> str:
    if not text.strip():
        raise ConfigError("must not be empty")
    return text


_BYTE_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4,
               "ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4}  # fmt: skip


def parse_bytes(text: str) -> int:
    """A byte count: `10485760`, `10MiB`, `1.5 GB` (SI units are powers of 1000)."""
    match = re.fullmatch(r"\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*([a-z]*)\s*", text.lower())
    unit = match.group(2) if match else ""
    unit = unit[:-1] if unit.endswith("b") else unit
    if match is None or unit not in _BYTE_UNITS:
        raise ConfigError(f"must be a number of bytes such as 10485760 or 10MiB, got {text!r}")
    value = int(float(match.group(1).replace("_", "")) * _BYTE_UNITS[unit])
    if not 0 < value <= 2**62:
        raise ConfigError(f"must be more than 0 bytes, got {text!r}")
    return value


def _bytes_or_zero(text: str) -> int:
    """Bytes, or 0 to turn the check off."""
    return 0 if text.strip() == "0" else parse_bytes(text)


def _quota(text: str) -> int | None:
    """Bytes, or `none` for no quota."""
    return None if text.strip().lower() == "none" else parse_bytes(text)


def _public_url(text: str) -> str:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"must be an http:// or https:// address, got {text!r}")
    if parts.query or parts.fragment or parts.path not in ("", "/"):
        raise ConfigError(f"must be just scheme, host and port (no path), got {text!r}")
    return f"{parts.scheme}://{parts.netloc}"


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
        "max_request_body_bytes",
        str(GiB),
        _int_between(1, STARIO_MAX_BODY_BYTES),
        "largest request body the server reads (Stario's hard limit is 2147483647)",
    ),
    Setting(
        "max_request_header_bytes",
        str(64 * 1024),
        _int_between(256, 16 * MiB),
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
        None,
        _int_between(1, STARIO_MAX_BODY_BYTES),
        "largest single file; defaults to the request body cap",
    ),
    Setting(
        "max_signals_bytes",
        str(16 * MiB),
        _int_between(1, STARIO_MAX_BODY_BYTES),
        "largest JSON (Datastar file signals) upload body",
    ),
    Setting(
        "signals_memory_bytes",
        str(64 * MiB),
        _int_between(MiB, STARIO_MAX_BODY_BYTES),
        "memory all JSON file-signal bodies together may take at once; beyond it a"
        " request waits a few seconds, then gets 503 with Retry-After",
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
        "default_quota",
        "none",
        _quota,
        "bytes each account may store unless it has its own quota (e.g. 10GiB), or none",
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
        "log",
        None,
        _log_format,
        "request log: json (one line per request), tty (colour, for a terminal) or off;"
        " default tty on a terminal, else json",
    ),
)


@dataclass(frozen=True, slots=True)
class Config:
    host: str
    port: int
    data_dir: Path
    max_request_body_bytes: int
    max_request_header_bytes: int
    body_timeout: float
    max_file_bytes: int
    max_signals_bytes: int
    signals_memory_bytes: int
    min_free_bytes: int | None
    public_url: str
    default_quota: int | None
    session_idle: float
    session_lifetime: float
    log: str

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
        if values["max_file_bytes"] is None:
            values["max_file_bytes"] = values["max_request_body_bytes"]
        if values["public_url"] is None:
            host = str(values["host"])
            host = f"[{host}]" if ":" in host else host
            values["public_url"] = f"http://{host}:{values['port']}"
        if values["log"] is None:
            values["log"] = "tty" if stdout_is_tty else "json"
        values["data_dir"] = Path(str(values["data_dir"]))
        return cls(**values)  # type: ignore[arg-type]


def uv_executable() -> str | None:
    """The uv binary that launched us (uv run sets UV), used to fetch the Datastar bundle."""
    return os.environ.get("UV")
