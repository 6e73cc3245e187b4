"""The Admin screen (`/admin`) and its commands: admins only (403 for any other
account). Each command is a plain form post: without scripts it answers 303 back to
the screen (`?done=<code>`), or the screen again with the refusal next to the field
it is about (400/404/409), or, for a new link, the screen with the link shown once
(200). Datastar posts the same forms and gets the changed form patched in. Every
action is written to the admin log, and every open Admin screen on every node
repaints (`ACCOUNTS_CHANGED`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import urlsplit

from stario import App, Context, Relay, Writer, h
from stario.datastar import SSE, at, data
from stario.markup import HtmlElement

from app.access.gate import Gate, principal
from app.accounts.admin import (
    LINK_LIFETIMES,
    AdminRefusal,
    last_sign_ins,
    link_lifetime,
    log_action,
    make_link,
    parse_quota,
    recent_actions,
    remove_by_admin,
)
from app.accounts.events import SESSIONS_CHANGED
from app.accounts.passwords import Passwords, WeakPassword, check_strength
from app.accounts.store import (
    Account,
    AccountError,
    account_by_name,
    create_account,
    list_accounts,
    set_quota,
)
from app.catalog.protocol import Database
from app.common.forms import FormError, as_sentence, read_form
from app.common.http import is_datastar
from app.common.livescreen import ScreenFeeds, screen_feeds, serve_screen
from app.common.shell import PageAssets, content_security_policy, new_nonce
from app.common.units import human_bytes
from app.config import Config
from app.features.admin.data import ACCOUNTS_CHANGED
from app.features.admin.urls import (
    ADMIN,
    ADMIN_CREATE,
    ADMIN_INVITE,
    ADMIN_LIVE,
    ADMIN_QUOTA,
    ADMIN_REMOVE,
    ADMIN_RESET,
    ADMIN_SERVER,
)
from app.features.admin.views import (
    CREATE_ID,
    DONE_MESSAGES,
    INVITE_ID,
    MAIN_ID,
    QUOTA_ID,
    REMOVE_ID,
    RESET_ID,
    FormState,
    ScreenState,
    ServerFacts,
    account_picker,
    accounts_part,
    admin_main,
    create_form,
    done_part,
    invite_form,
    log_part,
    quota_form,
    remove_form,
    reset_form,
    server_part,
)
from app.features.invitations.urls import INVITE, RESET
from app.features.nav.panel import screen_page
from app.files.store import FILES_CHANGED
from app.ingest.progress import Progress
from app.server.peers import ProtocolFactory
from app.storage.backends import describe
from app.storage.direct import PROXIED, Direct
from app.storage.space import free_bytes
from app.storage.store import Store

log = logging.getLogger("stowage.admin")


def package_version() -> str:
    try:
        return version("stowage")
    except PackageNotFoundError:
        return "unknown"


def catalog_words(config: Config) -> str:
    """Which catalog, never its password."""
    if config.database is None:
        return f"SQLite, {config.db_path}"
    url = urlsplit(config.database)
    where = url.hostname or "local socket"
    port = f":{url.port}" if url.port else ""
    return f"PostgreSQL, {where}{port}{url.path}"


class Refused(Exception):
    """A command refused: the form, the field the refusal is about, the words, the
    status, and what the form held (shown again)."""

    def __init__(
        self, form_id: str, field: str, message: str, status: int, values: Mapping[str, str]
    ) -> None:
        super().__init__(message)
        self.form_id, self.field, self.message = form_id, field, as_sentence(message)
        self.status, self.values = status, values


@dataclass(frozen=True, slots=True)
class Done:
    """A command done: the `?done=` code, or a one-time link for the form to show."""

    form_id: str
    code: str = ""
    link: str | None = None
    values: Mapping[str, str] | None = None


@dataclass
class Admin:
    config: Config
    db: Database
    store: Store
    gate: Gate
    assets: PageAssets
    relay: Relay[str]
    passwords: Passwords
    progress: Progress
    floor_bytes: int
    protocols: ProtocolFactory | None = None
    direct: Direct = PROXIED

    # What the screen shows ---------------------------------------------------------------

    async def facts(self) -> ServerFacts:
        config = self.config
        try:
            free: int | None = await asyncio.to_thread(free_bytes, config.uploads_dir)
        except OSError:
            free = None
        return ServerFacts(
            version=package_version(),
            storage=("S3: " if config.storage.kind == "s3" else "local: ") + describe(config),
            catalog=catalog_words(config),
            free_bytes=free,
            floor_bytes=self.floor_bytes,
            connections=None if self.protocols is None else len(self.protocols.open),
            uploads_in_flight=self.progress.count_in_flight(),
            direct=direct_words(config, self.direct),
        )

    async def state(self, **more) -> ScreenState:
        return ScreenState(
            accounts=await list_accounts(self.db),
            default_quota=self.config.default_quota,
            signed_in=await last_sign_ins(self.db),
            log=await recent_actions(self.db),
            server=await self.facts(),
            **more,
        )

    async def form(self, form_id: str, state: FormState, link: str | None = None) -> HtmlElement:
        if form_id == CREATE_ID:
            return create_form(state)
        if form_id == INVITE_ID:
            return invite_form(state, link)
        accounts = await list_accounts(self.db)
        if form_id == QUOTA_ID:
            return quota_form(accounts, state)
        if form_id == RESET_ID:
            return reset_form(accounts, state, link)
        return remove_form(accounts, state)

    def now(self) -> float:
        return self.gate.clock()

    def link(self, route_href: str, secret: str) -> str:
        return f"{self.config.public_url}{route_href}?token={secret}"

    async def logged(self, actor: Account, action: str, target: str, detail: str) -> None:
        await log_action(self.db, actor, action, target, detail, self.now())
        self.relay.publish(ACCOUNTS_CHANGED, action)

    # The commands ------------------------------------------------------------------------

    async def target(self, form_id: str, form: Mapping[str, str]) -> Account:
        name = form.get("account", "").strip()
        if not name:
            raise Refused(form_id, "account", "choose an account", 400, form)
        found = await account_by_name(self.db, name)
        if found is None:
            raise Refused(form_id, "account", f"no account named {name!r}", 404, form)
        return found

    async def create(self, actor: Account, form: Mapping[str, str]) -> Done:
        values = {k: form.get(k, "") for k in ("name", "quota", "admin")}
        name = values["name"].strip()
        admin = bool(values["admin"])
        try:
            kind, quota = parse_quota(values["quota"]) if values["quota"].strip() else (
                "default", None,
            )  # fmt: skip
        except AccountError as exc:
            raise Refused(CREATE_ID, "quota", str(exc), 400, values) from None
        try:
            password = check_strength(form.get("password", ""))
        except WeakPassword as exc:
            raise Refused(CREATE_ID, "password", str(exc), 400, values) from None
        try:
            account = await create_account(
                self.db, name, await self.passwords.hash(password), admin=admin,
                quota_kind=kind, quota_bytes=quota,
            )  # fmt: skip
        except AccountError as exc:
            taken = "already exists" in str(exc)
            raise Refused(CREATE_ID, "name", str(exc), 409 if taken else 400, values) from None
        detail = ("admin; " if admin else "") + (
            "quota " + (values["quota"].strip() if quota is None else human_bytes(quota))
            if values["quota"].strip()
            else "default quota"
        )
        await self.logged(actor, "created account", account.name, detail)
        return Done(CREATE_ID, "created")

    async def invite(self, actor: Account, form: Mapping[str, str]) -> Done:
        values = {k: form.get(k, "") for k in ("valid", "admin")}
        try:
            seconds = link_lifetime(values["valid"])
        except AdminRefusal as exc:
            raise Refused(INVITE_ID, "valid", str(exc), 400, values) from None
        admin = bool(values["admin"])
        secret = await make_link(
            self.db, "invite", created_by=actor, now=self.now(), seconds=seconds, admin=admin
        )
        detail = f"valid {LINK_LIFETIMES[seconds]}" + ("; admin" if admin else "")
        await self.logged(actor, "made invitation link", "", detail)
        return Done(INVITE_ID, link=self.link(INVITE.href(), secret), values=values)

    async def quota(self, actor: Account, form: Mapping[str, str]) -> Done:
        values = {k: form.get(k, "") for k in ("account", "quota")}
        target = await self.target(QUOTA_ID, values)
        try:
            kind, quota = parse_quota(values["quota"])
        except AccountError as exc:
            raise Refused(QUOTA_ID, "quota", str(exc), 400, values) from None
        await set_quota(self.db, target.id, kind, quota)
        words = kind if quota is None else human_bytes(quota)
        await self.logged(actor, "set quota", target.name, words)
        return Done(QUOTA_ID, "quota")

    async def reset(self, actor: Account, form: Mapping[str, str]) -> Done:
        values = {k: form.get(k, "") for k in ("account", "valid")}
        target = await self.target(RESET_ID, values)
        try:
            seconds = link_lifetime(values["valid"])
        except AdminRefusal as exc:
            raise Refused(RESET_ID, "valid", str(exc), 400, values) from None
        secret = await make_link(
            self.db, "reset", created_by=actor, now=self.now(), seconds=seconds, account=target
        )
        await self.logged(actor, "made reset link", target.name, f"valid {LINK_LIFETIMES[seconds]}")
        return Done(RESET_ID, link=self.link(RESET.href(), secret), values=values)

    async def remove(self, actor: Account, form: Mapping[str, str]) -> Done:
        values = {k: form.get(k, "") for k in ("account", "delete_files")}
        target = await self.target(REMOVE_ID, values)
        try:
            blob_ids = await remove_by_admin(
                self.db, actor, target, delete_files=bool(values["delete_files"])
            )
        except AdminRefusal as exc:
            raise Refused(REMOVE_ID, "account", str(exc), exc.status, values) from None
        if blob_ids:
            try:
                await self.store.remove(blob_ids)
            except OSError as exc:  # the rows are gone; the sweep reclaims the blobs
                log.warning("blobs of a removed account left behind: %s", exc)
        detail = f"with {len(blob_ids):,} file(s)" if blob_ids else "no files"
        await self.logged(actor, "removed account", target.name, detail)
        return Done(REMOVE_ID, "removed")


def _refused_page(w: Writer) -> None:
    w.html(h.P("403 Forbidden: the Admin screen is for admins."), 403)


def _first_field(form_id: str) -> str:
    return {CREATE_ID: "name", INVITE_ID: "valid"}.get(form_id, "account")


def direct_words(config: Config, direct: Direct) -> str:
    """What start-up decided about direct transfers, in a line (the reasons are in the
    start-up log: `stowage: direct ...`)."""
    if config.storage.kind != "s3":
        return "off (local storage)"
    if config.s3_direct == "none":
        return "off (--s3-direct none)"
    ways = [
        f"uploads {'straight to the bucket' if direct.uploads else 'through this node'}",
        f"downloads {'straight from the bucket' if direct.downloads else 'through this node'}",
    ]
    narrowed = (direct.uploads, direct.downloads) != (True, config.s3_direct == "all")
    return "; ".join(ways) + (" (the start-up log says why)" if narrowed else "")


def register_admin(app: App, admin: Admin) -> None:
    config = admin.config

    async def paint(owner: str, changed: frozenset[str] | None):
        accounts = await list_accounts(admin.db)
        table = accounts_part(accounts, config.default_quota, await last_sign_ins(admin.db))
        if changed is not None and ACCOUNTS_CHANGED not in changed:
            # Only usage or a sign-in: the table alone, so a choice being made in a
            # form's account picker is left as it is.
            return [table]
        return [
            table,
            log_part(await recent_actions(admin.db)),
            *[account_picker(form_id, accounts) for form_id in (QUOTA_ID, RESET_ID, REMOVE_ID)],
        ]

    # The table's usage, files and last sign-in follow every account's uploads,
    # deletes and sign-ins (on any node); the rest follows admin actions.
    subjects = (ACCOUNTS_CHANGED, f"{FILES_CHANGED}.*", f"{SESSIONS_CHANGED}.*")
    feeds: ScreenFeeds = screen_feeds(
        admin.relay, lambda owner: subjects, paint, cap=config.max_live_pages_per_account
    )

    def page(c: Context, w: Writer, state: ScreenState, status: int = 200) -> None:
        nonce = new_nonce()
        w.headers.set("content-security-policy", content_security_policy(nonce))
        main = admin_main(
            state,
            data.signals({"_offline": False, "_ended": False}, if_missing=True),
            data.init(at.get(ADMIN_LIVE.href(), retry="always")),
        )
        account = principal(c).account
        w.html(screen_page(admin.assets, "Admin", account, "admin", main, nonce=nonce), status)

    async def show(c: Context, w: Writer) -> None:
        if not principal(c).account.is_admin:
            _refused_page(w)
            return
        done = DONE_MESSAGES.get(c.req.query.get("done") or "", "")
        page(c, w, await admin.state(done=done))

    async def live(c: Context, w: Writer) -> None:
        who = principal(c)
        if not who.account.is_admin:
            _refused_page(w)
            return
        await serve_screen(
            c, w, owner=who.account_id, feeds=feeds, paint=paint,
            still_signed_in=admin.gate.still_signed_in, here=ADMIN.href(), main_id=MAIN_ID,
        )  # fmt: skip

    async def server(c: Context, w: Writer) -> None:
        if not principal(c).account.is_admin:
            _refused_page(w)
            return
        SSE(w).patch_elements(server_part(await admin.facts()))
        w.end()

    def command(form_id: str, action: Callable[[Account, Mapping[str, str]], Awaitable[Done]]):
        async def handler(c: Context, w: Writer) -> None:
            actor = principal(c).account
            if not actor.is_admin:
                _refused_page(w)
                return
            datastar = is_datastar(c)
            try:
                try:
                    form = await read_form(c)
                except FormError as exc:
                    raise Refused(form_id, _first_field(form_id), str(exc), 400, {}) from None
                done = await action(actor, form)
            except Refused as refused:
                state = FormState(refused.values, refused.message, refused.field)
                if datastar:
                    sse = SSE(w)
                    sse.patch_elements(await admin.form(form_id, state))
                    sse.patch_elements(done_part())
                    w.end()
                    return
                page(c, w, await admin.state(forms={form_id: state}), refused.status)
                return
            if done.link is not None:
                values = FormState(done.values or {})
                if datastar:
                    sse = SSE(w)
                    sse.patch_elements(await admin.form(form_id, values, done.link))
                    sse.patch_elements(done_part())
                    w.end()
                    return
                w.headers.set("cache-control", "private, no-store")
                page(c, w, await admin.state(forms={form_id: values}, links={form_id: done.link}))
                return
            if datastar:
                sse = SSE(w)
                # Replaced, not morphed: a morph keeps what was typed (the password too).
                sse.patch_elements(await admin.form(form_id, FormState()), mode="replace")
                sse.patch_elements(done_part(DONE_MESSAGES[done.code]))
                w.end()
                return
            w.redirect(ADMIN.href(query={"done": done.code}), 303)

        return handler

    admin.gate.pages(ADMIN)
    app.add(ADMIN, show)
    app.add(ADMIN_LIVE, live)
    app.add(ADMIN_SERVER, server)
    app.add(ADMIN_CREATE, command(CREATE_ID, admin.create))
    app.add(ADMIN_INVITE, command(INVITE_ID, admin.invite))
    app.add(ADMIN_QUOTA, command(QUOTA_ID, admin.quota))
    app.add(ADMIN_RESET, command(RESET_ID, admin.reset))
    app.add(ADMIN_REMOVE, command(REMOVE_ID, admin.remove))
