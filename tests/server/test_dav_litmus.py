"""The WebDAV conformance suite `litmus` (Debian's litmus 0.13) against a real server:
its basic, copymove, props and locks suites pass with no failure. Signing in is
HTTP Basic with an API token as the password (any user name)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.fixtures import RunningServer, start_server

SUITES = ("basic", "copymove", "props", "locks")
# `<- summary for `basic': of 16 tests run: 16 passed, 0 failed. 100.0%`
SUMMARY = re.compile(r"<- summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed")
WARNINGS = re.compile(r"-> (\d+) warnings? (?:was|were) issued")


@pytest.fixture
def dav_server(tmp_path: Path) -> Iterator[RunningServer]:
    if shutil.which("litmus") is None:
        pytest.skip("litmus is not installed (Debian package litmus)")
    yield from start_server(tmp_path)


def run_litmus(server: RunningServer, tmp_path: Path) -> str:
    env = {**os.environ, "TESTS": " ".join(SUITES), "HTMLDIR": str(tmp_path)}
    done = subprocess.run(
        ["litmus", f"{server.base_url}/dav/", "litmus-user", server.token],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )  # fmt: skip
    return done.stdout + done.stderr


def test_litmus_basic_copymove_props_locks_pass(dav_server: RunningServer, tmp_path: Path):
    out = run_litmus(dav_server, tmp_path)
    summaries = {m[1]: (int(m[2]), int(m[3]), int(m[4])) for m in SUMMARY.finditer(out)}
    assert set(summaries) == set(SUITES), out
    for suite, (ran, passed, failed) in summaries.items():
        assert failed == 0 and passed == ran, f"{suite}: {passed}/{ran}\n{out}"
    print(out)
