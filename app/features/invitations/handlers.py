"""`/invite?token=...` and `/reset?token=...`: the one-time links an admin made on the
Admin screen. A link that was used, expired or never existed is a 404 page in words;
a refused form (a taken name, a weak password) is the form again with the reason
(400/409), and the link still works."""

from __future__ import annotations

from dataclasses import dataclass

from stario import App, Context, Relay, Writer

from app.access.gate import Gate
from app.accounts.admin import LinkGone, accept_invitation, accept_reset, log_action, open_link
from app.accounts.passwords import Passwords, WeakPassword, check_strength
from app.accounts.store import AccountError, account_by_id
from app.catalog.protocol import Database
from app.common.forms import FormError, as_sentence, read_form
from app.common.shell import PageAssets, content_security_policy, new_nonce
from app.features.admin.data import ACCOUNTS_CHANGED
from app.features.home.urls import HOME
from app.features.invitations.urls import INVITE, INVITE_SUBMIT, RESET, RESET_SUBMIT
from app.features.invitations.views import gone_page, invite_page, reset_done_page, reset_page


@dataclass(frozen=True, slots=True)
class Links:
    db: Database
    gate: Gate
    passwords: Passwords
    assets: PageAssets
    relay: Relay[str]


def _html(w: Writer, element: object, status: int = 200) -> None:
    nonce = new_nonce()
    w.headers.set("content-security-policy", content_security_policy(nonce))
    w.headers.set("cache-control", "private, no-store")
    # The token is in this page's address: it goes to no other site.
    w.headers.set("referrer-policy", "no-referrer")
    w.html(element, status)  # type: ignore[arg-type]


def _new_password(form: dict[str, str]) -> str:
    password = form.get("password", "")
    if password != form.get("password_again", ""):
        raise WeakPassword("the two passwords differ")
    return check_strength(password)


def register_invitations(app: App, links: Links) -> None:
    db, gate = links.db, links.gate

    async def show_invite(c: Context, w: Writer) -> None:
        token = c.req.query.get("token") or ""
        link = await open_link(db, token, "invite", gate.clock())
        if link is None:
            _html(w, gone_page(links.assets), 404)
            return
        _html(w, invite_page(links.assets, token=token, admin=link.is_admin))

    async def submit_invite(c: Context, w: Writer) -> None:
        try:
            form = await read_form(c)
        except FormError:
            form = {}
        token = form.get("token", "")
        link = await open_link(db, token, "invite", gate.clock())
        if link is None:
            _html(w, gone_page(links.assets), 404)
            return
        name = form.get("name", "").strip()
        try:
            password = _new_password(form)
            account = await accept_invitation(
                db, token, name, await links.passwords.hash(password), gate.clock()
            )
        except LinkGone:
            _html(w, gone_page(links.assets), 404)
            return
        except (AccountError, WeakPassword) as exc:
            status = 409 if "already exists" in str(exc) else 400
            page = invite_page(
                links.assets, token=token, admin=link.is_admin, name=name,
                error=as_sentence(str(exc)),
            )  # fmt: skip
            _html(w, page, status)
            return
        detail = "admin" if account.is_admin else ""
        await log_action(db, account, "accepted invitation", account.name, detail, gate.clock())
        links.relay.publish(ACCOUNTS_CHANGED, "invited")
        await gate.start_session(w, account.id, c)
        w.redirect(HOME.href(), 303)

    async def show_reset(c: Context, w: Writer) -> None:
        token = c.req.query.get("token") or ""
        link = await open_link(db, token, "reset", gate.clock())
        account = None if link is None or link.account_id is None else (
            account_by_id(db, link.account_id)
        )  # fmt: skip
        if account is None:
            _html(w, gone_page(links.assets), 404)
            return
        _html(w, reset_page(links.assets, token=token, name=account.name))

    async def submit_reset(c: Context, w: Writer) -> None:
        try:
            form = await read_form(c)
        except FormError:
            form = {}
        token = form.get("token", "")
        link = await open_link(db, token, "reset", gate.clock())
        account = None if link is None or link.account_id is None else (
            account_by_id(db, link.account_id)
        )  # fmt: skip
        if account is None:
            _html(w, gone_page(links.assets), 404)
            return
        try:
            password = _new_password(form)
            await accept_reset(db, token, await links.passwords.hash(password), gate.clock())
        except LinkGone:
            _html(w, gone_page(links.assets), 404)
            return
        except WeakPassword as exc:
            message = as_sentence(str(exc))
            page = reset_page(links.assets, token=token, name=account.name, error=message)
            _html(w, page, 400)
            return
        await log_action(db, account, "used reset link", account.name, "", gate.clock())
        links.relay.publish(ACCOUNTS_CHANGED, "reset")
        _html(w, reset_done_page(links.assets, account.name))

    gate.public(INVITE, INVITE_SUBMIT, RESET, RESET_SUBMIT)
    app.add(INVITE, show_invite)
    app.add(INVITE_SUBMIT, submit_invite)
    app.add(RESET, show_reset)
    app.add(RESET_SUBMIT, submit_reset)
