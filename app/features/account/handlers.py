"""The Account screen (`/account`): password, sessions and API tokens, live.

Each command is a plain form post. Without scripts it answers 303 back to the screen
(`?done=` names a fixed message), the screen again with the reason next to the field
(400, 404, 429), or, for a new token, the screen with the token shown once (200).
Datastar sends the same forms (`Datastar-Request`) and gets patches instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from stario import App, Context, Relay, Writer, h
from stario.datastar import SSE, at, data
from stario.markup import HtmlElement

from app.access.gate import Gate, principal
from app.access.principal import AccountPrincipal
from app.accounts.events import sessions_changed
from app.accounts.passwords import Passwords, WeakPassword, check_strength
from app.accounts.store import (
    AccountError,
    SessionInfo,
    create_token,
    end_account_session,
    end_other_sessions,
    list_sessions,
    list_tokens,
    password_hash_of,
    revoke_token,
    session_handle,
    set_password,
)
from app.accounts.throttle import Throttle
from app.catalog.protocol import Database
from app.common.forms import FormError, as_sentence, read_form
from app.common.http import is_datastar, path_param
from app.common.livescreen import ScreenFeeds, screen_feeds, serve_screen
from app.common.shell import PageAssets, content_security_policy, new_nonce
from app.config import Config
from app.features.account.urls import (
    ACCOUNT,
    ACCOUNT_LIVE,
    ACCOUNT_PASSWORD,
    ACCOUNT_SESSION_END,
    ACCOUNT_SESSIONS_END_OTHERS,
    ACCOUNT_TOKEN_CREATE,
    ACCOUNT_TOKEN_REVOKE,
)
from app.features.account.views import (
    DONE,
    SESSION_SIGNAL,
    AccountView,
    PasswordErrors,
    account_sections,
    notice_part,
    password_form,
    sessions_part,
)
from app.features.auth.urls import LOGIN
from app.features.nav.panel import screen_page
from app.features.tokens.data import tokens_changed
from app.features.tokens.panel import new_token_part, token_form, tokens_part
from app.server.peers import ClientAddresses

MAIN_ID = "account"


def _subjects(owner: str) -> tuple[str, ...]:
    return tokens_changed(owner), sessions_changed(owner)


def _minutes(seconds: int) -> str:
    minutes = max(1, ceil(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _current_session(who: AccountPrincipal) -> str | None:
    """The handle of the session a request came with; None for an API token."""
    return session_handle(who.credential) if who.via == "session" else None


@dataclass(frozen=True, slots=True)
class AccountScreen:
    gate: Gate
    config: Config
    db: Database
    assets: PageAssets
    relay: Relay[str]
    passwords: Passwords
    # The sign-in throttle: a wrong current password counts as a failed sign-in.
    throttle: Throttle
    addresses: ClientAddresses

    async def sessions(self, owner: str) -> list[SessionInfo]:
        config = self.config
        return await list_sessions(
            self.db, owner, now=self.gate.clock(), idle=config.session_idle,
            lifetime=config.session_lifetime,
        )  # fmt: skip

    async def view(self, who: AccountPrincipal, **shown: object) -> AccountView:
        owner = who.account_id
        return AccountView(
            sessions=await self.sessions(owner),
            tokens=await list_tokens(self.db, owner),
            current_session=_current_session(who),
            **shown,  # type: ignore[arg-type]
        )

    async def render(self, c: Context, w: Writer, status: int = 200, **shown: object) -> None:
        """The whole screen (its GET, and a plain form's answer when not a redirect)."""
        who = principal(c)
        nonce = new_nonce()
        w.headers.set("content-security-policy", content_security_policy(nonce))
        signals: dict[str, str | bool] = {
            "_offline": False,
            "_ended": False,
            SESSION_SIGNAL: _current_session(who) or "",
        }
        main = h.Main(
            {"id": MAIN_ID},
            data.signals(signals, if_missing=True),
            data.init(at.get(ACCOUNT_LIVE.href(), retry="always")),
            *account_sections(await self.view(who, **shown)),
        )
        page = screen_page(self.assets, "Account", who.account, "account", main, nonce=nonce)
        w.html(page, status)

    def done(self, w: Writer, code: str) -> None:
        w.redirect(f"{ACCOUNT.href()}?done={code}", 303)


def _patch(w: Writer, *elements: HtmlElement) -> None:
    sse = SSE(w)
    for element in elements:
        sse.patch_elements(element)
    w.end()


def show(screen: AccountScreen):
    async def handler(c: Context, w: Writer) -> None:
        notice = DONE.get(c.req.query.get("done") or "")
        await screen.render(c, w, notice=notice)

    return handler


def change_password(screen: AccountScreen):
    """The current password is checked as a sign-in's is (and a wrong one counts as a
    failed sign-in, per account name and per address); on success every other session
    of the account ends, and with it their live streams."""

    async def handler(c: Context, w: Writer) -> None:
        who = principal(c)
        datastar = is_datastar(c)

        async def refuse(status: int, errors: PasswordErrors) -> None:
            if datastar:
                _patch(w, password_form(errors))
            else:
                await screen.render(c, w, status, password_errors=errors)

        try:
            form = await read_form(c)
        except FormError as exc:
            await refuse(400, PasswordErrors(current=as_sentence(str(exc))))
            return
        current, new, again = form.get("current", ""), form.get("new", ""), form.get("again", "")
        name = who.account.name
        keys = [f"name:{name.lower()}", f"address:{screen.addresses.of(c)}"]
        wait = screen.throttle.retry_after(keys)
        if wait is not None:
            w.headers.set("retry-after", str(wait))
            message = f"Too many wrong passwords. Wait {_minutes(wait)} and try again."
            await refuse(429, PasswordErrors(current=message))
            return
        found = await password_hash_of(screen.db, name)
        if not current:
            await refuse(400, PasswordErrors(current="Give your current password."))
            return
        if found is None or not await screen.passwords.verify(found[1], current):
            screen.throttle.failed(keys)
            await refuse(400, PasswordErrors(current="That is not your current password."))
            return
        screen.throttle.forget(keys[0])
        try:
            check_strength(new)
        except WeakPassword as exc:
            await refuse(400, PasswordErrors(new=as_sentence(str(exc))))
            return
        if new != again:
            await refuse(400, PasswordErrors(again="The two new passwords differ."))
            return
        keep = who.credential if who.via == "session" else None
        await set_password(screen.db, who.account_id, await screen.passwords.hash(new),
                           keep_session=keep)  # fmt: skip
        screen.gate.tell_sessions_changed(who.account_id)
        if datastar:
            # Replaced, not morphed: a morph keeps what the fields hold, and the
            # passwords typed must not stay on the page.
            sse = SSE(w)
            sse.patch_elements(password_form(done=DONE["password"]), mode="replace")
            sse.patch_elements(notice_part())
            w.end()
            return
        screen.done(w, "password")

    return handler


def end_session(screen: AccountScreen):
    """Sign out one session of the account (this one included: then to sign in)."""

    async def handler(c: Context, w: Writer) -> None:
        who = principal(c)
        handle = path_param(c, "session_id")
        datastar = is_datastar(c)
        if handle == _current_session(who):
            await screen.gate.end_session(c, w)
            if datastar:
                SSE(w).navigate(LOGIN.href())
                w.end()
            else:
                w.redirect(LOGIN.href(), 303)
            return
        if not await end_account_session(screen.db, who.account_id, handle):
            message = "That session is not signed in (it has ended already)."
            if datastar:
                sessions = await screen.sessions(who.account_id)
                _patch(w, sessions_part(sessions, _current_session(who), message))
            else:
                await screen.render(c, w, 404, session_error=message)
            return
        screen.gate.tell_sessions_changed(who.account_id)
        if datastar:
            sessions = await screen.sessions(who.account_id)
            _patch(w, sessions_part(sessions, _current_session(who)), notice_part(DONE["session"]))
            return
        screen.done(w, "session")

    return handler


def end_others(screen: AccountScreen):
    """Sign out every session of the account but the one asking (all of them, for an
    API token)."""

    async def handler(c: Context, w: Writer) -> None:
        who = principal(c)
        keep = who.credential if who.via == "session" else None
        if await end_other_sessions(screen.db, who.account_id, keep):
            screen.gate.tell_sessions_changed(who.account_id)
        if is_datastar(c):
            sessions = await screen.sessions(who.account_id)
            _patch(w, sessions_part(sessions, _current_session(who)), notice_part(DONE["others"]))
            return
        screen.done(w, "others")

    return handler


def create_token_command(screen: AccountScreen):
    """A new API token, shown once in the answer (never in a redirect's URL)."""

    async def handler(c: Context, w: Writer) -> None:
        who = principal(c)
        datastar = is_datastar(c)
        label = ""
        try:
            form = await read_form(c)
            label = form.get("label", "")
            info, secret = await create_token(screen.db, who.account_id, label)
        except (FormError, AccountError) as exc:
            message = as_sentence(str(exc))
            if datastar:
                _patch(w, token_form(label, message))
            else:
                await screen.render(c, w, 400, token_label=label, token_error=message)
            return
        screen.relay.publish(tokens_changed(who.account_id), "created")
        tokens = await list_tokens(screen.db, who.account_id)
        if datastar:
            _patch(w, token_form(), new_token_part(info, secret), tokens_part(tokens))
            return
        await screen.render(c, w, 200, new_token=(info, secret))

    return handler


def revoke_token_command(screen: AccountScreen):
    async def handler(c: Context, w: Writer) -> None:
        who = principal(c)
        datastar = is_datastar(c)
        token_id = path_param(c, "token_id")
        if not await revoke_token(screen.db, token_id, account_id=who.account_id):
            message = "That token is not there (it was revoked already)."
            if datastar:
                _patch(w, notice_part(message))
            else:
                await screen.render(c, w, 404, notice=message)
            return
        screen.relay.publish(tokens_changed(who.account_id), "revoked")
        if datastar:
            tokens = await list_tokens(screen.db, who.account_id)
            _patch(w, tokens_part(tokens), notice_part(DONE["token"]))
            return
        screen.done(w, "token")

    return handler


def register_account(
    app: App,
    gate: Gate,
    config: Config,
    db: Database,
    assets: PageAssets,
    relay: Relay[str],
    passwords: Passwords,
    throttle: Throttle,
) -> None:
    screen = AccountScreen(gate, config, db, assets, relay, passwords, throttle, gate.addresses)

    async def paint(owner: str, changed: frozenset[str] | None):
        parts = []
        if changed is None or tokens_changed(owner) in changed:
            parts.append(tokens_part(await list_tokens(db, owner)))
        if changed is None or sessions_changed(owner) in changed:
            parts.append(sessions_part(await screen.sessions(owner)))
        return parts

    feeds: ScreenFeeds = screen_feeds(
        relay, _subjects, paint, cap=config.max_live_pages_per_account
    )

    async def live(c: Context, w: Writer) -> None:
        await serve_screen(
            c, w, owner=principal(c).account_id, feeds=feeds, paint=paint,
            still_signed_in=gate.still_signed_in, here=ACCOUNT.href(), main_id=MAIN_ID,
        )  # fmt: skip

    gate.pages(ACCOUNT)
    app.add(ACCOUNT, show(screen))
    app.add(ACCOUNT_LIVE, live)
    app.add(ACCOUNT_PASSWORD, change_password(screen))
    app.add(ACCOUNT_SESSION_END, end_session(screen))
    app.add(ACCOUNT_SESSIONS_END_OTHERS, end_others(screen))
    app.add(ACCOUNT_TOKEN_CREATE, create_token_command(screen))
    app.add(ACCOUNT_TOKEN_REVOKE, revoke_token_command(screen))
