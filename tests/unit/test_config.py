import subprocess
import sys

import pytest

from app.cli.main import main, server_config
from app.config import SETTINGS, Config, ConfigError


def test_defaults_need_no_setup():
    config = Config.load({}, environ={})
    assert (config.host, config.port, str(config.data_dir)) == ("127.0.0.1", 8000, "var")
    assert config.max_request_body_bytes == 1024**3
    assert config.max_file_bytes == 64 * 1024**3  # beyond one request: resumable uploads
    assert config.upload_expiry == 86_400
    assert config.body_timeout == 30
    assert config.max_signals_bytes == 16 * 1024**2
    assert config.log == "json"
    assert Config.load({}, environ={}, stdout_is_tty=True).log == "tty"


def test_flags_win_over_environment():
    environ = {"STOWAGE_PORT": "9000", "STOWAGE_MAX_FILE_BYTES": "10", "STOWAGE_LOG": "off"}
    config = Config.load({"port": "9001"}, environ=environ)
    assert config.port == 9001
    assert config.max_file_bytes == 10
    assert config.log == "off"


def test_settings_map_onto_stario_request_policy():
    config = Config.load(
        {
            "max_request_body_bytes": "2147483647",
            "max_request_header_bytes": "8192",
            "body_timeout": "2.5",
        },
        environ={},
    )
    policy = server_config(config).requests
    assert policy.max_body_bytes == 2_147_483_647
    assert policy.max_header_bytes == 8192
    assert policy.body_timeout == 2.5


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        ({"max_request_body_bytes": "2147483648"}, "--max-request-body-bytes must be between"),
        ({"port": "http"}, "--port must be a whole number"),
        ({"body_timeout": "0"}, "--body-timeout must be more than 0"),
        ({"log": "loud"}, "--log must be one of json, tty, off"),
        ({"host": " "}, "--host must not be empty"),
    ],
)
def test_bad_values_name_the_setting(flags, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Config.load(flags, environ={})


def test_bad_environment_value_names_the_variable():
    with pytest.raises(ConfigError, match="STOWAGE_MAX_FILE_BYTES must be a number of bytes"):
        Config.load({}, environ={"STOWAGE_MAX_FILE_BYTES": "lots"})


def test_bad_value_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--max-request-body-bytes", "3000000000"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("stowage: error: --max-request-body-bytes")


def test_file_cap_may_exceed_the_body_cap():
    """Resumable uploads carry a file in several requests, each under the body cap."""
    config = Config.load({"max_request_body_bytes": "100", "max_file_bytes": "200"}, environ={})
    assert (config.max_request_body_bytes, config.max_file_bytes) == (100, 200)


def test_help_documents_every_flag_and_variable():
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for setting in SETTINGS:
        assert setting.flag in text
        assert setting.env in text


def test_no_setting_of_the_callers_reaches_the_tests():
    """tests/support/fixtures.py drops the caller's STOWAGE_* settings before any test runs, so
    a shell that exported some (say, after `serve`) gives the same results as a clean one."""
    import os

    leaked = [n for n in os.environ if n.startswith("STOWAGE_") and n != "STOWAGE_TEST_DATABASE"]
    assert leaked == []
