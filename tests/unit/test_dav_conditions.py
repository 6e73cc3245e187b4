"""The WebDAV `If` header (RFC 4918 §10.4) and lock timeouts, without HTTP."""

from __future__ import annotations

import pytest

from app.webdav.conditions import (
    BadIf,
    ResourceState,
    holds,
    parse_if,
    resources_named,
    state_tokens,
)
from app.webdav.locks import Lock, ancestors_and_self, is_below, timeout_seconds

TOKEN = "opaquelocktoken:0f0e-1"
ETAG = '"abc"'
LOCKED = ResourceState(ETAG, frozenset({TOKEN}))
UNLOCKED = ResourceState(ETAG, frozenset())


def test_untagged_lists_any_true_and_every_condition_in_one():
    lists = parse_if(f"(<{TOKEN}> [{ETAG}]) (Not <DAV:no-lock>)")
    assert [len(one.conditions) for one in lists] == [2, 1]
    assert holds(lists, {None: LOCKED})
    assert holds(lists, {None: UNLOCKED})  # the second list: Not no-lock
    assert not holds(parse_if(f'(<{TOKEN}> ["other"])'), {None: LOCKED})
    assert not holds(parse_if("(<DAV:no-lock>)"), {None: LOCKED})
    assert holds(parse_if('(Not ["other"])'), {None: LOCKED})
    assert state_tokens(lists) == {TOKEN, "DAV:no-lock"}


def test_tagged_lists_apply_to_their_resource():
    lists = parse_if(f"<http://h/dav/a> (<{TOKEN}>) </dav/b> ([W/{ETAG}])")
    assert resources_named(lists) == {"http://h/dav/a", "/dav/b"}
    assert holds(lists, {"http://h/dav/a": UNLOCKED, "/dav/b": LOCKED})  # weak etag matches
    assert not holds(
        lists, {"http://h/dav/a": UNLOCKED, "/dav/b": ResourceState(None, frozenset())}
    )
    # A resource not ours (no state): its lists cannot hold.
    assert not holds(parse_if(f"<http://other/x> (<{TOKEN}>)"), {})


@pytest.mark.parametrize(
    "bad",
    ["", "(", "()", "(Not)", "(<a>", "([abc])", '(["a)', "x (<a>)", f"(<{TOKEN}>) </b> (<a>)"],
)
def test_headers_that_do_not_parse(bad):
    with pytest.raises(BadIf):
        parse_if(bad)


def test_timeouts_are_capped_at_an_hour():
    assert timeout_seconds(None) == 3600
    assert timeout_seconds("Second-60") == 60
    assert timeout_seconds("Infinite, Second-60") == 3600
    assert timeout_seconds("Second-99999") == 3600
    assert timeout_seconds("bogus, Second-5") == 5


def test_what_a_lock_covers():
    deep = Lock("t", "o", "a", "/dav/a/", "infinity", "exclusive", "", 60, 0.0)
    flat = Lock("t", "o", "a", "/dav/a/", "0", "exclusive", "", 60, 0.0)
    assert deep.covers("a") and deep.covers("a/b/c") and not deep.covers("ab")
    assert flat.covers("a") and not flat.covers("a/b")
    assert is_below("x", "") and not is_below("", "")
    assert ancestors_and_self("a/b") == ["", "a", "a/b"]
