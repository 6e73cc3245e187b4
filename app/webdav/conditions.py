"""The `If` request header of WebDAV (RFC 4918 §10.4): parsed, then evaluated against
the state of the resources it names. Pure: the caller finds each resource's entity
tag and the locks that cover it.

    If: (<opaquelocktoken:x> ["etag"]) (Not <DAV:no-lock>)
    If: </dav/a.txt> (<opaquelocktoken:x>)

A list is true when every condition in it is; the header is true when any list is
(each applied to its tagged resource, or to the request's own when untagged)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


class BadIf(ValueError):
    """An `If` header that does not parse (400)."""


@dataclass(frozen=True, slots=True)
class Condition:
    negated: bool
    # A state token (a lock token, or any other URI such as DAV:no-lock), or an
    # entity tag (with its quotes, maybe W/): one of the two.
    token: str | None = None
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class ConditionList:
    # The tagged resource's URL as sent, None for the request's own resource.
    resource: str | None
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class ResourceState:
    """What a condition is checked against: the resource's entity tag (None when it
    does not exist) and the tokens of the live locks that cover it."""

    etag: str | None
    lock_tokens: frozenset[str]


def parse_if(value: str) -> list[ConditionList]:
    """The lists of an `If` header, in order; BadIf when it does not parse."""
    lists: list[ConditionList] = []
    resource: str | None = None
    tagged: bool | None = None
    at = 0
    text = value.strip()
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        if text[at] == "<":
            end = text.find(">", at)
            if end < 0:
                raise BadIf("an If header's <resource> is not closed")
            if tagged is False:
                raise BadIf("an If header mixes tagged and untagged lists")
            tagged = True
            resource = text[at + 1 : end]
            at = end + 1
            continue
        if text[at] != "(":
            raise BadIf(f"an If header holds {text[at]!r} where a list should start")
        if tagged is None:
            tagged = False
        if tagged and resource is None:
            raise BadIf("an If header's list has no resource")
        conditions, at = _parse_list(text, at + 1)
        lists.append(ConditionList(resource if tagged else None, tuple(conditions)))
    if not lists:
        raise BadIf("an If header needs at least one list")
    return lists


def _parse_list(text: str, at: int) -> tuple[list[Condition], int]:
    conditions: list[Condition] = []
    negated = False
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            raise BadIf("an If header's list is not closed")
        char = text[at]
        if char == ")":
            if not conditions or negated:
                raise BadIf("an If header holds an empty list or a lone Not")
            return conditions, at + 1
        if text[at : at + 3].lower() == "not" and not negated:
            negated = True
            at += 3
            continue
        if char == "<":
            end = text.find(">", at)
            if end < 0:
                raise BadIf("an If header's <state token> is not closed")
            conditions.append(Condition(negated, token=text[at + 1 : end]))
        elif char == "[":
            end = text.find("]", at)
            if end < 0:
                raise BadIf("an If header's [entity tag] is not closed")
            etag = text[at + 1 : end].strip()
            if not re.fullmatch(r'(?:W/)?"[^"]*"', etag):
                raise BadIf(f"an If header's entity tag {etag!r} is not quoted")
            conditions.append(Condition(negated, etag=etag))
        else:
            raise BadIf(f"an If header holds {char!r} inside a list")
        negated = False
        at = end + 1


def state_tokens(lists: list[ConditionList]) -> set[str]:
    """Every state token the header names: the lock tokens it submits."""
    return {c.token for one in lists for c in one.conditions if c.token is not None}


def resources_named(lists: list[ConditionList]) -> set[str | None]:
    return {one.resource for one in lists}


def _holds(condition: Condition, state: ResourceState) -> bool:
    if condition.token is not None:
        found = condition.token in state.lock_tokens
    else:
        found = state.etag is not None and _same_etag(condition.etag or "", state.etag)
    return found != condition.negated


def _same_etag(given: str, etag: str) -> bool:
    return given.removeprefix("W/") == etag.removeprefix("W/")


def holds(lists: list[ConditionList], states: Mapping[str | None, ResourceState]) -> bool:
    """Whether the header is true, given the state of each resource it names."""
    for one in lists:
        state = states.get(one.resource)
        if state is None:
            continue
        if all(_holds(condition, state) for condition in one.conditions):
            return True
    return False
