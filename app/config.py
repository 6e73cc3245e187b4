"""Every setting Stowage has, and the only place that reads the environment.

A setting comes from its command-line flag, else its `STOWAGE_*` variable,
else the embedded default, so `stowage serve` runs with no set-up at all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

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


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"must be a number of seconds, got {text!r}") from None
    if not 0 < value <= 86_400:
        raise ConfigError(f"must be more than 0 and at most 86400 seconds, got {text}")
    return value


def _non_empty(text: str) -> str:
    if not text.strip():
        raise ConfigError("must not be empty")
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
    log: str

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

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
        if values["log"] is None:
            values["log"] = "tty" if stdout_is_tty else "json"
        values["data_dir"] = Path(str(values["data_dir"]))
        return cls(**values)  # type: ignore[arg-type]


def uv_executable() -> str | None:
    """The uv binary that launched us (uv run sets UV), used to fetch the Datastar bundle."""
    return os.environ.get("UV")
