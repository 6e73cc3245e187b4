"""The gate every request passes: who is this, and may they use this route?

Private by default: a route anyone may use is declared (`gate.public(ROUTE)`) by
the feature that registers it; every other route needs a principal. Without one,
pages send the browser to sign in (303) and everything else answers 401 JSON with
`WWW-Authenticate`, never a file or a list. Handlers then ask `principal(c)` and
the rules below (`may_touch_file`), so what an account may touch is written once.

Credentials, in this order: an `Authorization` header (`Bearer TOKEN`, or HTTP
Basic with any user name and the token as password, for `curl -u :TOKEN`), else
the session cookie. A request that sends an Authorization header that is not a
live token is refused, even if it also carries a good cookie.

Share links (`gate.shares(ROUTE)`, routes with a `{token}` capture) are resolved
here too, and only there: such a route never sees an account, and the share it
sees (`share_access(c)`) reads its one file (`may_read_file`), nothing else. A
link with a password is unlocked by a cookie scoped to `/s/{token}` (set after the
landing page's form) or by HTTP Basic with the password (`curl -u :PASSWORD`);
wrong passwords are throttled like sign-ins.

File requests (`gate.requests(ROUTE)`, routes whose `{token}` is a request's) are
resolved here the same way: such a route never sees an account either, and the
request it sees (`request_access(c)`) may only upload through it (`may_upload_via`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from stario import Context, Handler, Route, Writer
from stario.cookies import delete_cookie, set_cookie

from app.access.principal import AccountPrincipal, Principal, RequestPrincipal, SharePrincipal
from app.accounts.devices import describe_device
from app.accounts.passwords import Passwords
from app.accounts.store import (
    create_session,
    credentials_marker,
    end_expired_sessions,
    end_session,
    local_credential_changes,
    resolve_session,
    resolve_token,
    touch_session,
    touch_token,
)
from app.accounts.throttle import Throttle
from app.catalog.protocol import Database
from app.common.http import json_error, path_param, tag_tus_refusal, wants_html
from app.config import Config
from app.files.store import FileRow, get_file
from app.requests.store import FileRequest, resolve_request
from app.requests.store import Gone as RequestGoneReason
from app.server.peers import ClientAddresses
from app.shares.store import Gone, Share, resolve_share
from app.storage.ids import is_blob_id

SESSION_COOKIE = "stowage_session"
# last_seen and last_used_at are written at most this often per session or token, so
# a busy client costs no write per request.
TOUCH_EVERY_SECONDS = 300
PRINCIPAL_KEY = "stowage.principal"
SHARE_KEY = "stowage.share"
REQUEST_KEY = "stowage.request"
SHARE_COOKIE = "stowage_share"
# How long a right password is remembered in the browser (never past the link's end).
SHARE_COOKIE_SECONDS = 7 * 24 * 3600
STATIC_PREFIX = "GET /static/"
PRIVATE_NO_STORE = "private, no-store"
CHALLENGE = 'Bearer realm="stowage", Basic realm="stowage", charset="UTF-8"'
# Browsers show their own password dialog for a Basic challenge, which would ask a
# person for a token; they are only ever offered Bearer.
BROWSER_CHALLENGE = 'Bearer realm="stowage"'
# WebDAV clients (neon: litmus, cadaver, davfs2; rclone; file managers) answer the
# first challenge they read, and know Basic only: theirs is Basic alone.
DAV_PATHS = ("/dav", "/dav/")
DAV_CHALLENGE = 'Basic realm="stowage", charset="UTF-8"'
DAV_SIGN_IN = (
    "sign in with HTTP Basic: any user name, and an API token as the password (an app"
    " password made on the Account screen or by `stowage tokens add`); the account's"
    " own password is never accepted here\n"
)
DAV_WRONG = "that token is not valid (revoked, expired or wrong): " + DAV_SIGN_IN


# A resolved credential is trusted this long at most without reading it again (the
# account's name and admin flag may change without touching the marker).
CREDENTIAL_CACHE_SECONDS = 60.0
MAX_CACHED_CREDENTIALS = 10_000
# How often the credentials marker (changes made by other processes) is looked at.
MARKER_CHECK_SECONDS = 0.25


@dataclass(slots=True)
class _Credential:
    principal: AccountPrincipal
    cached_at: float  # monotonic
    touched: float | None  # monotonic time last_used_at was last written (tokens)
    created: float = 0.0  # sessions: wall-clock times, checked on every use
    last_seen: float = 0.0


class Gate:
    def __init__(
        self,
        db: Database,
        config: Config,
        *,
        sign_in_path: str,
        clock: Callable[[], float] = time.time,
        passwords: Passwords | None = None,
        share_throttle: Throttle | None = None,
        addresses: ClientAddresses | None = None,
    ) -> None:
        self._db = db
        self._config = config
        self._sign_in_path = sign_in_path
        # Never less often than a tenth of the idle lifetime, or use would not keep a
        # session alive.
        self._touch_every = min(TOUCH_EVERY_SECONDS, config.session_idle / 10)
        self._credentials: dict[str, _Credential] = {}
        marker = credentials_marker(db)
        self._marker = None if marker is None else str(marker)
        self._marker_checked = -1e9
        self._local_seen = -1
        self._marker_seen: tuple[int, int] = (-1, -1)
        self._public: set[str] = set()
        self._pages: set[str] = set()
        self._shares: set[str] = set()
        self._requests: set[str] = set()
        self._passwords = passwords
        self.share_throttle = share_throttle or Throttle(subject="throttle.shares")
        self.addresses = addresses or ClientAddresses()
        self.clock = clock
        # Told the account whenever one of its sessions starts, is used or ends (the
        # composition root publishes it on the relay: the Account screen repaints).
        self.sessions_changed: Callable[[str], None] | None = None

    # What routes are -------------------------------------------------------------------

    def public(self, *routes: Route) -> None:
        """Routes anyone may use; the handler still sees a principal if there is one."""
        self._public.update(route.pattern for route in routes)

    def pages(self, *routes: Route) -> None:
        """Routes a person opens in a browser: without a principal, go and sign in."""
        self._pages.update(route.pattern for route in routes)

    def shares(self, *routes: Route) -> None:
        """Routes of a share link (their `{token}` is the link's): anyone may use them,
        and they see the share, never an account."""
        self._shares.update(route.pattern for route in routes)

    def requests(self, *routes: Route) -> None:
        """Routes of a file request (their `{token}` is the request's): anyone may use
        them, and they see the request, never an account."""
        self._requests.update(route.pattern for route in routes)

    def _is_public(self, pattern: str) -> bool:
        # "" is no route at all (404/405): nothing behind it to protect.
        return not pattern or pattern in self._public

    # Who a request is --------------------------------------------------------------------

    async def identify(self, c: Context) -> Principal | None | bool:
        """The principal, None when anonymous, False for credentials that are wrong."""
        authorization = c.req.headers.get("authorization")
        if authorization is not None:
            return await self._from_authorization(authorization)
        secret = c.req.cookies.get(SESSION_COOKIE)
        if secret:
            return await self._from_session(secret)
        return None

    async def _from_authorization(self, value: str) -> Principal | bool:
        scheme, _, credentials = value.strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return False
            credentials = decoded.partition(":")[2]
        elif scheme.lower() != "bearer":
            return False
        key = "token:" + hashlib.sha256(credentials.encode()).hexdigest()
        now = time.monotonic()
        cached = self._cached(key, now)
        if cached is None:
            found = resolve_token(self._db, credentials)
            if found is None:
                return False
            account, token_id, last_used = found
            principal = AccountPrincipal(account, "token", token_id)
            fresh = last_used is not None and _age(last_used) <= TOUCH_EVERY_SECONDS
            cached = self._remember(key, principal, now, touched=now if fresh else None)
        if cached.touched is None or now - cached.touched > TOUCH_EVERY_SECONDS:
            await touch_token(self._db, cached.principal.credential)
            cached.touched = now
        return cached.principal

    async def _from_session(self, secret: str) -> Principal | bool:
        now = self.clock()
        config = self._config
        key = "session:" + hashlib.sha256(secret.encode()).hexdigest()
        cached = self._cached(key, time.monotonic())
        if cached is None:
            session = resolve_session(
                self._db, secret, now, config.session_idle, config.session_lifetime
            )
            if session is None:
                return False
            principal = AccountPrincipal(session.account, "session", session.id_hash)
            cached = self._remember(key, principal, time.monotonic(), touched=None)
            cached.created, cached.last_seen = session.created_at, session.last_seen
        if now - cached.last_seen > config.session_idle or (
            now - cached.created > config.session_lifetime
        ):
            self._credentials.pop(key, None)
            return False
        if now - cached.last_seen > self._touch_every:
            await touch_session(self._db, cached.principal.credential, now)
            cached.last_seen = now
            self.tell_sessions_changed(cached.principal.account_id)
        return cached.principal

    # What credentials resolve to, kept while nothing says otherwise ---------------------

    def _cached(self, key: str, now: float) -> _Credential | None:
        """A credential resolved before, unless something says it may have changed (a
        token revoked, a password changed, an account removed or its quota set; by
        this process at once, by a `stowage` command through the credentials marker,
        looked at every MARKER_CHECK_SECONDS) or it is older than
        CREDENTIAL_CACHE_SECONDS. Under load, a database read (or even a stat) per
        request waits for the GIL behind the writer threads: that cost this server a
        fifth of its small-upload throughput."""
        changes = local_credential_changes()
        if changes != self._local_seen:
            self._local_seen = changes
            self._credentials.clear()
        marker = self._marker
        if marker is not None and now - self._marker_checked > MARKER_CHECK_SECONDS:
            self._marker_checked = now
            try:
                status = os.stat(marker)
                seen = (status.st_mtime_ns, status.st_size)
            except FileNotFoundError:
                seen = (0, 0)
            if seen != self._marker_seen:
                self._credentials.clear()
                self._marker_seen = seen
        found = self._credentials.get(key)
        if found is None or now - found.cached_at > CREDENTIAL_CACHE_SECONDS:
            return None
        return found

    def _remember(
        self, key: str, principal: AccountPrincipal, now: float, *, touched: float | None
    ) -> _Credential:
        if len(self._credentials) >= MAX_CACHED_CREDENTIALS:
            self._credentials.clear()
        entry = _Credential(principal, now, touched)
        self._credentials[key] = entry
        return entry

    # Share links ---------------------------------------------------------------------------

    async def _share_access(self, c: Context) -> ShareAccess:
        token = str(c.match.params.get("token", ""))  # type: ignore[attr-defined]
        share = resolve_share(self._db, token)
        if share is None:
            return None
        reason = share.gone(self.clock())
        if reason is not None:
            return ShareGone(share, reason)
        if share.password_hash is None:
            return SharePrincipal(share)
        cookie = c.req.cookies.get(SHARE_COOKIE)
        if cookie and same_secret(cookie, _unlock_value(share)):
            return SharePrincipal(share)
        password = _basic_password(c.req.headers.get("authorization"))
        if password is None:
            return ShareLocked(share)
        retry_after = await self.check_share_password(c, share, password)
        if retry_after == 0:
            return SharePrincipal(share)
        return ShareLocked(share, wrong=True, retry_after=retry_after)

    async def check_share_password(self, c: Context, share: Share, password: str) -> int | None:
        """0 for the right password, None for a wrong one, else the seconds to wait
        (too many wrong ones: 5 in 15 minutes per link, and per client address)."""
        keys = [f"share:{share.id}", f"share-address:{self.addresses.of(c)}"]
        wait = self.share_throttle.retry_after(keys)
        if wait is not None:
            return wait
        if self._passwords is None:
            raise RuntimeError("the gate was built without Passwords")
        if await self._passwords.verify(share.password_hash, password):
            self.share_throttle.forget(keys[0])
            return 0
        self.share_throttle.failed(keys)
        return None

    def remember_unlocked(self, w: Writer, share: Share, path: str) -> None:
        """The cookie that unlocks `share` at `path` (its `/s/{token}`) from now on."""
        max_age = SHARE_COOKIE_SECONDS
        if share.expires_at is not None:
            max_age = max(1, min(max_age, int(share.expires_at - self.clock())))
        set_cookie(
            w,
            SHARE_COOKIE,
            _unlock_value(share),
            max_age=max_age,
            path=path,
            secure=self._config.secure_cookies,
            httponly=True,
            samesite="lax",
        )

    def _request_access(self, c: Context) -> RequestAccess:
        token = str(c.match.params.get("token", ""))  # type: ignore[attr-defined]
        found = resolve_request(self._db, token)
        if found is None:
            return None
        reason = found.gone(self.clock())
        if reason is not None:
            return RequestGone(found, reason)
        return RequestPrincipal(found)

    async def still_signed_in(self, c: Context) -> bool:
        """Whether the request's credentials still hold (for long-lived streams: a
        sign-out, password change or revoked token ends them)."""
        return isinstance(await self.identify(c), AccountPrincipal)

    # Sessions ------------------------------------------------------------------------------

    def tell_sessions_changed(self, account_id: str) -> None:
        if self.sessions_changed is not None:
            self.sessions_changed(account_id)

    async def start_session(self, w: Writer, account_id: str, c: Context) -> None:
        """Sign `account_id` in on this browser; `c`, the sign-in's request, says from
        where (its device and client address, shown on the Account screen)."""
        now = self.clock()
        config = self._config
        # Sign-ins are rare: a fine moment to forget sessions that can no longer be used.
        await end_expired_sessions(self._db, now, config.session_idle, config.session_lifetime)
        device = describe_device(c.req.headers.get("user-agent"))
        address = self.addresses.of(c)
        secret = await create_session(self._db, account_id, now, user_agent=device, address=address)
        self.tell_sessions_changed(account_id)
        set_cookie(
            w,
            SESSION_COOKIE,
            secret,
            max_age=int(self._config.session_lifetime),
            path="/",
            secure=self._config.secure_cookies,
            httponly=True,
            samesite="lax",
        )

    async def end_session(self, c: Context, w: Writer) -> None:
        found = principal_or_none(c)
        if found is not None and found.via == "session":
            await end_session(self._db, found.credential)
            self.tell_sessions_changed(found.account_id)
        delete_cookie(w, SESSION_COOKIE, path="/", secure=self._config.secure_cookies)

    # The middleware ---------------------------------------------------------------------

    def middleware(self, inner: Handler) -> Handler:
        async def gate(c: Context, w: Writer) -> None:
            pattern: str = c.match.pattern  # type: ignore[attr-defined]
            if pattern.startswith(STATIC_PREFIX):
                await inner(c, w)  # fingerprinted public assets: no lookup, cacheable
                return
            if pattern in self._shares:
                # A share route never acts for an account, whatever else it carries.
                c.state[PRINCIPAL_KEY] = None
                c.state[SHARE_KEY] = await self._share_access(c)
                w.headers.set("cache-control", PRIVATE_NO_STORE)
                w.headers.set("referrer-policy", "no-referrer")  # the token is in the URL
                await inner(c, w)
                return
            if pattern in self._requests:
                # A request route never acts for an account, whatever else it carries.
                c.state[PRINCIPAL_KEY] = None
                c.state[REQUEST_KEY] = self._request_access(c)
                w.headers.set("cache-control", PRIVATE_NO_STORE)
                w.headers.set("referrer-policy", "no-referrer")  # the token is in the URL
                await inner(c, w)
                return
            found = await self.identify(c)
            principal = found if isinstance(found, AccountPrincipal) else None
            c.state[PRINCIPAL_KEY] = principal
            if self._is_public(pattern):
                if principal is not None:
                    w.headers.set("cache-control", PRIVATE_NO_STORE)
                await inner(c, w)
                return
            if principal is None:
                self._refuse(c, w, pattern, wrong=found is False)
                return
            # Handlers may loosen this (downloads allow revalidated caching).
            w.headers.set("cache-control", PRIVATE_NO_STORE)
            await inner(c, w)

        return gate

    def _refuse(self, c: Context, w: Writer, pattern: str, *, wrong: bool) -> None:
        w.headers.set("cache-control", PRIVATE_NO_STORE)
        tag_tus_refusal(c, w)
        headers = c.req.headers
        path = c.req.path
        if path == DAV_PATHS[0] or path.startswith(DAV_PATHS[1]):
            w.headers.set("www-authenticate", DAV_CHALLENGE)
            # No handler ran to let the connection's next slashed target reach its
            # route (app/server/peers.py `request_ended`): the client retries with
            # its credentials on a fresh connection, where it does.
            w.headers.set("connection", "close")
            w.respond(
                (DAV_WRONG if wrong else DAV_SIGN_IN).encode(), b"text/plain; charset=utf-8", 401
            )
            return
        # A page, or a file link a person opened in the browser: sign in, then go on.
        navigating = headers.get("sec-fetch-mode") == "navigate" and c.req.method == "GET"
        if pattern in self._pages or navigating:
            target = c.req.path + (f"?{c.req.query_bytes.decode()}" if c.req.query_bytes else "")
            w.redirect(f"{self._sign_in_path}?next={quote(target, safe='/')}", 303)
            return
        from_browser = headers.get("sec-fetch-mode") is not None
        w.headers.set("www-authenticate", BROWSER_CHALLENGE if from_browser else CHALLENGE)
        if wrong:
            json_error(w, 401, "the token or session is not valid (revoked, expired or wrong)")
        else:
            json_error(w, 401, "sign in first: send an API token (Authorization: Bearer TOKEN)")


@dataclass(frozen=True, slots=True)
class ShareLocked:
    """A live link with a password not (rightly) given. `wrong`: one was sent (HTTP
    Basic) and was wrong; `retry_after`: seconds to wait, when throttled."""

    share: Share
    wrong: bool = False
    retry_after: int | None = None


@dataclass(frozen=True, slots=True)
class ShareGone:
    share: Share
    reason: Gone


# What a share route's token opens: the file (a SharePrincipal), a password prompt,
# a link that is over, or None for no such link.
type ShareAccess = SharePrincipal | ShareLocked | ShareGone | None


def share_access(c: Context) -> ShareAccess:
    found = c.state.get(SHARE_KEY)
    if isinstance(found, SharePrincipal | ShareLocked | ShareGone):
        return found
    return None


@dataclass(frozen=True, slots=True)
class RequestGone:
    request: FileRequest
    reason: RequestGoneReason


# What a request route's token opens: uploads (a RequestPrincipal), a request that
# takes no more files, or None for no such request.
type RequestAccess = RequestPrincipal | RequestGone | None


def request_access(c: Context) -> RequestAccess:
    found = c.state.get(REQUEST_KEY)
    if isinstance(found, RequestPrincipal | RequestGone):
        return found
    return None


def _unlock_value(share: Share) -> str:
    """The unlock cookie: an HMAC keyed by the password's argon2 hash (salted, and only
    in our catalog), so only this server can make it, and a new password voids it."""
    key = (share.password_hash or "").encode()
    return hmac.new(key, f"stowage-share:{share.id}".encode(), hashlib.sha256).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    """`given` (from a client) is `expected`, compared in constant time. As bytes:
    `hmac.compare_digest` raises TypeError for text that is not ASCII, which a cookie
    or form field may well be."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def _basic_password(value: str | None) -> str | None:
    if value is None:
        return None
    scheme, _, credentials = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2]


def principal_or_none(c: Context) -> AccountPrincipal | None:
    """The account a request acts for; never a share link."""
    found = c.state.get(PRINCIPAL_KEY)
    return found if isinstance(found, AccountPrincipal) else None


def opens_a_page(c: Context) -> bool:
    """A person's browser opening a link (a GET asking for HTML, signed in by a session
    or not at all): a refusal is an HTML page. An API token's request, or one asking
    for JSON or anything but HTML, keeps its JSON or text refusal."""
    found = principal_or_none(c)
    by_token = found is not None and found.via == "token"
    return c.req.method == "GET" and not by_token and wants_html(c)


def principal(c: Context) -> AccountPrincipal:
    """The principal of a private route (the gate let the request in only with one)."""
    found = principal_or_none(c)
    if found is None:
        raise RuntimeError("principal() on a route the gate lets anyone use")
    return found


# The rules ---------------------------------------------------------------------------------


def may_touch_file(who: Principal, owner: str | None) -> bool:
    """Read, download, delete, share: an account touches its own files and nothing else
    (an admin included: admin manages accounts, not other people's files). Anything
    else is answered exactly like an unknown id, so ids of others' files cannot be
    probed. A share link touches nothing by this rule; it may only read (below)."""
    return isinstance(who, AccountPrincipal) and owner is not None and owner == who.account_id


def may_read_file(who: Principal, file_id: str, owner: str | None) -> bool:
    """Download: an account its own files; a share link its one file, nothing else."""
    if isinstance(who, SharePrincipal):
        return file_id == who.file_id and owner == who.share.owner
    return may_touch_file(who, owner)


async def readable_file(c: Context, db: Database) -> FileRow | None:
    """The file the path's {file_id} names, if this request may read it. None for an
    unknown id and for another account's file alike: no existence oracle."""
    file_id = path_param(c, "file_id")
    row = await get_file(db, file_id) if is_blob_id(file_id) else None
    if row is None or not may_read_file(principal(c), file_id, row.owner):
        return None
    return row


def may_upload_via(who: Principal) -> str | None:
    """Whose space an upload through a file request goes into: the request's owner, for
    a live request; None for anything else. A request's only right is this one."""
    return who.owner if isinstance(who, RequestPrincipal) else None


def _age(iso: str) -> float:
    try:
        then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    return (datetime.now(UTC) - then).total_seconds()
