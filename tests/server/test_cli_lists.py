"""The list commands as scripts use them (issue 27, item 5): `users list` and `tokens
list` print a header line over aligned columns, so a script skips one line and reads
ids; `--json` prints one JSON list on stdout alone, the same items as the text; and
the size forms reach `users add --quota` and `users quota`."""

import json
import subprocess
import sys
from pathlib import Path

from tests.support.fixtures import PASSWORD, ROOT


def stowage(*args: str, data_dir: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args, "--data-dir", str(data_dir)],
        input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def columns(line: str, widths_from: str) -> list[str]:
    """Cut `line` where the header's columns start (labels may hold spaces)."""
    starts = [
        i for i, c in enumerate(widths_from) if c != " " and (i == 0 or widths_from[i - 1] == " ")
    ]
    ends = [*starts[1:], None]
    return [line[start:end].strip() for start, end in zip(starts, ends, strict=True)]


def test_tokens_list_has_a_header_and_json(tmp_path):
    data = tmp_path / "data"
    assert stowage("users", "add", "ann", data_dir=data, stdin=PASSWORD + "\n").returncode == 0
    empty = stowage("tokens", "list", "ann", data_dir=data)
    assert (empty.returncode, empty.stderr) == (0, "")
    assert empty.stdout.split() == ["ID", "CREATED", "LAST_USED", "LABEL"]  # the header alone
    assert json.loads(stowage("tokens", "list", "ann", "--json", data_dir=data).stdout) == []

    secrets = [
        stowage("tokens", "add", "ann", "--label", "nightly backup", data_dir=data).stdout.strip(),
        stowage("tokens", "add", "ann", data_dir=data).stdout.strip(),
    ]
    text = stowage("tokens", "list", "ann", data_dir=data)
    assert (text.returncode, text.stderr) == (0, "")
    header, *lines = text.stdout.splitlines()
    assert header.split() == ["ID", "CREATED", "LAST_USED", "LABEL"]
    # What the script did: skip one line, take the first word, revoke it.
    ids = [line.split()[0] for line in text.stdout.splitlines()[1:]]
    assert sorted(ids) == sorted(secret.split("_")[1] for secret in secrets)
    # Aligned: each column starts where its header word does.
    rows = [columns(line, header) for line in lines]
    assert {row[3] for row in rows} == {"nightly backup", "-"}
    assert {row[2] for row in rows} == {"never"}

    listed = stowage("tokens", "list", "ann", "--json", data_dir=data)
    assert (listed.returncode, listed.stderr) == (0, "")
    items = json.loads(listed.stdout)  # stdout is the JSON document and nothing else
    assert [set(item) for item in items] == [{"id", "label", "created_at", "last_used_at"}] * 2
    assert [(i["id"], i["created_at"], i["last_used_at"] or "never", i["label"] or "-")
            for i in items] == [tuple(row) for row in rows]  # fmt: skip
    assert all(i["created_at"].endswith("Z") and "T" in i["created_at"] for i in items)

    assert stowage("tokens", "revoke", ids[0], data_dir=data).returncode == 0
    assert len(stowage("tokens", "list", "ann", data_dir=data).stdout.splitlines()) == 2
    missing = stowage("tokens", "list", "nobody", "--json", data_dir=data)
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr == "stowage tokens: error: no account named 'nobody'\n"


def test_users_list_json_matches_the_text(tmp_path):
    data = tmp_path / "data"
    for args in (["ann", "--quota", "1.5GB", "--admin"], ["bob", "--quota", "none"], ["cy"]):
        added = stowage("users", "add", *args, data_dir=data, stdin=PASSWORD + "\n")
        assert added.returncode == 0, added.stderr
    assert stowage("users", "quota", "cy", "2 gib", data_dir=data).returncode == 0
    assert stowage("users", "quota", "cy", "default", data_dir=data).returncode == 0
    text = stowage("users", "list", data_dir=data).stdout.splitlines()
    listed = stowage("users", "list", "--json", data_dir=data)
    assert listed.stderr == ""
    items = json.loads(listed.stdout)
    assert [set(i) for i in items] == [{"id", "name", "is_admin", "quota_kind", "quota_bytes",
                                        "used_bytes", "file_count", "created_at"}] * 3  # fmt: skip
    assert [(i["name"], i["is_admin"], i["quota_kind"], i["quota_bytes"]) for i in items] == [
        ("ann", True, "bytes", 1_500_000_000),
        ("bob", False, "none", None),
        ("cy", False, "default", None),
    ]
    assert [line.split()[0] for line in text[1:]] == [i["name"] for i in items]
    assert [line.split()[-1] for line in text[1:]] == [i["created_at"] for i in items]
    assert all((i["used_bytes"], i["file_count"]) == (0, 0) for i in items)
    assert all(len(i["id"]) > 0 for i in items)


def test_quota_sizes_on_the_command_line(tmp_path):
    data = tmp_path / "data"
    assert stowage("users", "add", "ann", data_dir=data, stdin=PASSWORD + "\n").returncode == 0
    for text, expected in (("10MB", 10_000_000), ("10 mib", 10 * 1024**2), ("1048576", 2**20),
                           ("1.5GB", 1_500_000_000), ("2TiB", 2 * 1024**4)):  # fmt: skip
        assert stowage("users", "quota", "ann", text, data_dir=data).returncode == 0
        [item] = json.loads(stowage("users", "list", "--json", data_dir=data).stdout)
        assert item["quota_bytes"] == expected, text
    bad = stowage("users", "quota", "ann", "10XB", data_dir=data)
    assert (bad.returncode, bad.stdout, bad.stderr.count("\n")) == (2, "", 1)
    assert bad.stderr.startswith("stowage users: error: the quota must be a number of bytes")
    assert "10GiB" in bad.stderr and "or none (no limit), or default" in bad.stderr
    flag = stowage("users", "add", "bo", "--quota", "lots", data_dir=data, stdin=PASSWORD + "\n")
    assert flag.returncode == 2
    assert flag.stderr.startswith("stowage users: error: --quota: the quota must be")
