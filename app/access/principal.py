"""Principals: who a request acts for.

An account, signed in by a session cookie or an API token; a share link, whose
token (and password, if it has one) lets anyone read its one file and nothing else;
or a file request, whose token lets anyone upload into its owner's space through it.
What each may do is written once, in the rules of `gate.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.accounts.store import Account
from app.requests.store import FileRequest
from app.shares.store import Share


@dataclass(frozen=True, slots=True)
class AccountPrincipal:
    """An account acting through a session (`credential` is the session's hash) or an
    API token (`credential` is the token's id)."""

    account: Account
    via: Literal["session", "token"]
    credential: str

    @property
    def account_id(self) -> str:
        return self.account.id


@dataclass(frozen=True, slots=True)
class SharePrincipal:
    """Whoever holds a live share link (and knows its password, if it has one). Never
    an account: `principal(c)` refuses it, so no account route can serve it."""

    share: Share

    @property
    def file_id(self) -> str:
        return self.share.file_id


@dataclass(frozen=True, slots=True)
class RequestPrincipal:
    """Whoever holds a live file-request link: may upload into its owner's space through
    it, within its limits, and nothing else (no list, no download, no delete). Never an
    account: `principal(c)` refuses it, so no account route can serve it."""

    request: FileRequest

    @property
    def owner(self) -> str:
        return self.request.owner


type Principal = AccountPrincipal | SharePrincipal | RequestPrincipal
