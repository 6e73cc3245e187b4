"""First-run setup, sign-in and sign-out.

POST /login takes a plain `application/x-www-form-urlencoded` form (the page's own,
which needs no JavaScript) or Datastar signals (JSON). A form gets a page back: a
303 to where the person was going, or the form again with the reason in words.
Datastar gets 200 `text/event-stream`, as everywhere in Stowage.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from stario import App, Context, Writer
from stario.datastar import SSE

from app.access.gate import Gate, principal_or_none, same_secret
from app.accounts.passwords import Passwords, WeakPassword, check_strength
from app.accounts.store import AccountError, count_accounts, create_account, password_hash_of
from app.accounts.throttle import Throttle
from app.catalog.protocol import Database
from app.common.forms import FormError, as_sentence, read_form
from app.common.http import BadTarget, is_datastar, local_target
from app.common.shell import PageAssets, content_security_policy, new_nonce
from app.features.auth.urls import LOGIN, LOGIN_SUBMIT, LOGOUT, SETUP, SETUP_SUBMIT
from app.features.auth.views import ERROR_ID, login_page, setup_page
from app.features.home.urls import HOME
from app.server.peers import ClientAddresses


@dataclass(frozen=True, slots=True)
class Auth:
    db: Database
    gate: Gate
    passwords: Passwords
    throttle: Throttle
    addresses: ClientAddresses
    assets: PageAssets
    # The one-time secret of this run's setup link; no account may exist yet for it to work.
    setup_token: str


def safe_next(target: str | None) -> str:
    """Only a path on this site: never `//host` or `https://host` (an open redirect);
    BadTarget when it holds control characters."""
    return local_target(target, HOME.href())


def _html(w: Writer, element: object, status: int = 200) -> None:
    nonce = new_nonce()
    w.headers.set("content-security-policy", content_security_policy(nonce))
    w.headers.set("cache-control", "private, no-store")
    # Pages render without a nonce'd Datastar expression; the nonce only keeps the
    # policy the same as the main page's.
    w.html(element, status)  # type: ignore[arg-type]


def _minutes(seconds: int) -> str:
    minutes = max(1, ceil(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def show_login(auth: Auth):
    async def handler(c: Context, w: Writer) -> None:
        try:
            next_path = safe_next(c.req.query.get("next"))
        except BadTarget as exc:
            _html(
                w, login_page(auth.assets, next_path=HOME.href(), error=as_sentence(str(exc))), 400
            )
            return
        if principal_or_none(c) is not None:
            w.redirect(next_path, 303)
            return
        if await count_accounts(auth.db) == 0:
            # Nothing to sign in to yet: say where the setup link is.
            _html(
                w,
                login_page(
                    auth.assets,
                    next_path=next_path,
                    error="No account exists yet. Open the setup link that "
                    "`stowage serve` printed, or create one with `stowage users add`.",
                ),
            )
            return
        _html(w, login_page(auth.assets, next_path=next_path))

    return handler


def submit_login(auth: Auth):
    async def handler(c: Context, w: Writer) -> None:
        try:
            form = await read_form(c)
        except FormError as exc:
            _login_refused(c, w, auth, 400, str(exc), "", HOME.href())
            return
        name = form.get("name", "").strip()
        password = form.get("password", "")
        try:
            next_path = safe_next(form.get("next"))
        except BadTarget as exc:
            _login_refused(c, w, auth, 400, as_sentence(str(exc)), name, HOME.href())
            return
        keys = [f"name:{name.lower()}", f"address:{auth.addresses.of(c)}"]
        wait = auth.throttle.retry_after(keys)
        if wait is not None:
            w.headers.set("retry-after", str(wait))
            message = f"Too many failed sign-ins. Wait {_minutes(wait)} and try again."
            _login_refused(c, w, auth, 429, message, name, next_path)
            return
        found = await password_hash_of(auth.db, name) if name else None
        ok = await auth.passwords.verify(found[1] if found else None, password)
        if not ok or found is None:
            auth.throttle.failed(keys)
            _login_refused(c, w, auth, 401, "Wrong name or password.", name, next_path)
            return
        auth.throttle.forget(keys[0])
        await auth.gate.start_session(w, found[0].id, c)
        if is_datastar(c):
            SSE(w).navigate(next_path)
            w.end()
            return
        w.redirect(next_path, 303)

    return handler


def _login_refused(
    c: Context, w: Writer, auth: Auth, status: int, message: str, name: str, next_path: str
) -> None:
    if is_datastar(c):
        from stario import h

        SSE(w).patch_elements(h.P({"id": ERROR_ID, "class": "error", "role": "alert"}, message))
        w.end()
        return
    _html(w, login_page(auth.assets, next_path=next_path, name=name, error=message), status)


def logout(auth: Auth):
    async def handler(c: Context, w: Writer) -> None:
        await auth.gate.end_session(c, w)
        w.redirect(LOGIN.href(), 303)

    return handler


def _setup_token_ok(auth: Auth, token: str | None) -> bool:
    return token is not None and same_secret(token, auth.setup_token)


def _not_found(w: Writer) -> None:
    w.headers.set("cache-control", "private, no-store")
    w.text("Not Found", 404)


def show_setup(auth: Auth):
    async def handler(c: Context, w: Writer) -> None:
        token = c.req.query.get("token")
        if not _setup_token_ok(auth, token) or await count_accounts(auth.db) > 0:
            _not_found(w)
            return
        assert token is not None
        _html(w, setup_page(auth.assets, token=token))

    return handler


def submit_setup(auth: Auth):
    async def handler(c: Context, w: Writer) -> None:
        try:
            form = await read_form(c)
        except FormError:
            _not_found(w)
            return
        token = form.get("token")
        if not _setup_token_ok(auth, token) or await count_accounts(auth.db) > 0:
            _not_found(w)
            return
        assert token is not None
        name = form.get("name", "").strip()
        password = form.get("password", "")
        try:
            if password != form.get("password_again", ""):
                raise WeakPassword("the two passwords differ")
            check_strength(password)
            account = await create_account(
                auth.db,
                name,
                await auth.passwords.hash(password),
                admin=True,
                only_if_first=True,
            )
        except (AccountError, WeakPassword) as exc:
            message = str(exc)
            _html(
                w,
                setup_page(
                    auth.assets,
                    token=token,
                    name=name,
                    error=as_sentence(message),
                ),
                400,
            )
            return
        await auth.gate.start_session(w, account.id, c)
        w.redirect(HOME.href(), 303)

    return handler


def register_auth(app: App, auth: Auth) -> None:
    auth.gate.public(SETUP, SETUP_SUBMIT, LOGIN, LOGIN_SUBMIT, LOGOUT)
    app.add(SETUP, show_setup(auth))
    app.add(SETUP_SUBMIT, submit_setup(auth))
    app.add(LOGIN, show_login(auth))
    app.add(LOGIN_SUBMIT, submit_login(auth))
    app.add(LOGOUT, logout(auth))
