"""One size syntax for every size flag and variable (issue 27, item 5): plain bytes,
decimal and binary units in any case, an optional space, decimals rounded down;
`none` only where a setting has no limit; junk refused with the flag and the forms."""

import subprocess
import sys

import pytest

from app.accounts.admin import parse_quota
from app.accounts.store import AccountError
from app.config import SETTINGS, SIZE_FORMS, Config, ConfigError, parse_size

SIZE_SETTINGS = [setting for setting in SETTINGS if setting.is_size]

# Forms every size setting takes: each lies between 4 MiB and 16 MiB, inside every
# size setting's range (the header cap is at most 16 MiB, the ZIP memory at least 4).
EVERY_FORM = {
    "8388608": 8_388_608,
    "8_388_608": 8_388_608,
    " 8388608 ": 8_388_608,
    "+8388608": 8_388_608,
    "8MB": 8_000_000,
    "8mb": 8_000_000,
    "8 MB": 8_000_000,
    "8M": 8_000_000,
    "8000KB": 8_000_000,
    "8000 kB": 8_000_000,
    "8MiB": 8 * 1024**2,
    "8 mib": 8 * 1024**2,
    "8Mi": 8 * 1024**2,
    "8192KiB": 8 * 1024**2,
    "5.5MB": 5_500_000,
    "4.35MB": 4_350_000,  # exact: not 4349999 as a float would give
    "0.008GB": 8_000_000,
    "0.0078125GiB": 8 * 1024**2,
    "8388608B": 8_388_608,
    "8388608 b": 8_388_608,
}
JUNK = ["lots", "10XB", "10 M B", "-1MB", "1e6", "10MBs", "MB", "", "1.5.5MB", "0x10", "1,000"]


def test_every_size_setting_is_found():
    """The settings that take a size are the ones that hold one."""
    assert {s.name for s in SIZE_SETTINGS} == {
        "max_request_body_bytes",
        "max_request_header_bytes",
        "max_file_bytes",
        "max_signals_bytes",
        "signals_memory_bytes",
        "archive_memory_bytes",
        "min_free_bytes",
        "default_quota",
        "min_upload_rate",
    }


@pytest.mark.parametrize("setting", SIZE_SETTINGS, ids=lambda s: s.name)
@pytest.mark.parametrize(("text", "expected"), EVERY_FORM.items(), ids=list(EVERY_FORM))
def test_every_size_setting_takes_every_form(setting, text, expected):
    by_flag = Config.load({setting.name: text}, environ={})
    by_variable = Config.load({}, environ={setting.env: text})
    assert getattr(by_flag, setting.name) == getattr(by_variable, setting.name) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10KB", 10 * 1000), ("10kb", 10 * 1000), ("10K", 10 * 1000),
        ("10MB", 10 * 1000**2), ("10GB", 10 * 1000**3), ("10TB", 10 * 1000**4),
        ("10KiB", 10 * 1024), ("10MiB", 10 * 1024**2), ("10GiB", 10 * 1024**3),
        ("10TiB", 10 * 1024**4), ("10tib", 10 * 1024**4), ("10 TIB", 10 * 1024**4),
        ("1.5GB", 1_500_000_000), ("1.5 GiB", 1_610_612_736), ("1.0000000001KB", 1000),
        ("0.5", 0), (".5KiB", 512), ("0", 0), ("1048576", 1_048_576),
    ],
)  # fmt: skip
def test_the_parser_reads_every_unit_and_rounds_down(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("setting", SIZE_SETTINGS, ids=lambda s: s.name)
@pytest.mark.parametrize("text", JUNK)
def test_junk_is_refused_naming_the_setting_and_the_forms(setting, text):
    for flags, environ, named in (
        ({setting.name: text}, {}, setting.flag),
        ({}, {setting.env: text}, setting.env),
    ):
        with pytest.raises(ConfigError) as refused:
            Config.load(flags, environ=environ)
        message = str(refused.value)
        assert message.startswith(f"{named} must be a number of bytes (1048576)")
        assert "10KB" in message and "10GiB" in message and repr(text) in message


def test_none_only_where_the_setting_has_no_limit():
    assert Config.load({"default_quota": "none"}, environ={}).default_quota is None
    assert Config.load({"default_quota": "NONE"}, environ={}).default_quota is None
    for setting in SIZE_SETTINGS:
        if setting.name == "default_quota":
            continue
        with pytest.raises(ConfigError, match=f"^{setting.flag} must be a number of bytes"):
            Config.load({setting.name: "none"}, environ={})
    with pytest.raises(ConfigError, match="or none for no limit"):
        Config.load({"default_quota": "lots"}, environ={})


def test_off_switches_keep_their_words():
    assert Config.load({"min_free_bytes": "0"}, environ={}).min_free_bytes == 0
    assert Config.load({"min_upload_rate": "0"}, environ={}).min_upload_rate == 0
    assert Config.load({"min_upload_rate": "off"}, environ={}).min_upload_rate == 0
    assert Config.load({"min_upload_rate": "10KiB"}, environ={}).min_upload_rate == 10_240
    with pytest.raises(ConfigError, match="more than 0 bytes"):
        Config.load({"default_quota": "0"}, environ={})


def test_the_issue_s_example_and_ranges():
    """`--max-file-bytes 10MB` was refused while `--default-quota 50MB` was accepted."""
    config = Config.load({"max_file_bytes": "10MB", "default_quota": "50MB"}, environ={})
    assert (config.max_file_bytes, config.default_quota) == (10_000_000, 50_000_000)
    with pytest.raises(ConfigError, match="--max-request-body-bytes must be between 1 and"):
        Config.load({"max_request_body_bytes": "3GB"}, environ={})
    with pytest.raises(ConfigError, match="--max-request-header-bytes must be between 256"):
        Config.load({"max_request_header_bytes": "0.1KB"}, environ={})
    with pytest.raises(ConfigError, match="must be between 1 and 2147483647 bytes"):
        # 2 GiB is one byte over Stario's signed 32-bit cap
        Config.load({"max_request_body_bytes": "2GiB"}, environ={})
    assert Config.load({"max_file_bytes": "2GiB"}, environ={}).max_file_bytes == 2**31


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10GiB", ("bytes", 10 * 1024**3)), ("500 mb", ("bytes", 500_000_000)),
     ("none", ("none", None)), ("Default", ("default", None)), ("1.5GB", ("bytes", 1_500_000_000))],
)  # fmt: skip
def test_the_quota_words_of_the_command_line_and_admin_screen(text, expected):
    assert parse_quota(text) == expected


def test_a_bad_quota_lists_every_form():
    with pytest.raises(AccountError) as refused:
        parse_quota("lots")
    message = str(refused.value)
    assert message.startswith("the quota must be a number of bytes")
    assert "or none (no limit), or default" in message


def test_help_shows_the_forms():
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--help"], capture_output=True, text=True
    )
    text = " ".join(done.stdout.split())
    assert f"Every SIZE is {SIZE_FORMS}." in text
    assert "--max-file-bytes SIZE" in text and "--default-quota SIZE" in text
    quota = subprocess.run(
        [sys.executable, "-m", "app.cli", "users", "quota", "--help"],
        capture_output=True,
        text=True,
    )
    assert SIZE_FORMS in " ".join(quota.stdout.split())


def test_tokens_list_json_keys_are_the_apis():
    """`tokens list --json` and GET /api/tokens describe a token alike."""
    from app.accounts.store import TokenInfo
    from app.cli.accounts import token_json as cli_token
    from app.features.tokens.data import token_json as api_token

    token = TokenInfo("f8d77e573c63", "backup", "2026-12-07T21:38:00Z", None)
    assert cli_token(token) == api_token(token)
