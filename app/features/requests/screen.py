"""The Requests screen (`/requests`): the account's file requests, live, and its
commands: create a request, close one, cancel an unfinished upload made through one.

Each command is a plain form post. Without scripts it answers 303 back to the screen
(`?done=` names a fixed message), the screen again with the reason next to the field
(400, 404), or, for a new request, the screen with its link shown once (200: a link
is a secret, never put in a redirect's URL). Datastar sends the same forms
(`Datastar-Request`) and gets patches instead. The JSON API (/api/requests) is
handlers.py's, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from stario import App, Context, Writer, h
from stario.datastar import SSE, at, data
from stario.markup import HtmlElement

from app.access.gate import principal
from app.common.forms import FormError, as_sentence, read_form
from app.common.http import is_datastar, path_param
from app.common.livescreen import ScreenFeeds, screen_feeds, serve_screen
from app.common.shell import content_security_policy, new_nonce
from app.features.nav.panel import screen_page
from app.features.requests.data import open_requests
from app.features.requests.handlers import MIB, Requests
from app.features.requests.panel import (
    DEFAULT_EXPIRY,
    DONE,
    EXPIRY_CHOICES,
    FOLDER_SIGNAL,
    RequestForm,
    new_request_part,
    notice_part,
    request_folder_select,
    request_form,
    requests_panel,
    requests_part,
)
from app.features.requests.urls import (
    REQUEST_CLOSE_FORM,
    REQUEST_PAGE,
    REQUEST_UPLOAD_CANCEL_FORM,
    REQUESTS_CREATE,
    REQUESTS_LIVE,
    REQUESTS_SCREEN,
)
from app.files.store import files_changed
from app.folders.store import ROOT, catalog_id, folder_choices, get_folder
from app.requests.events import requests_changed
from app.requests.store import (
    MAX_FILES,
    REQUEST_ID_PATTERN,
    RequestError,
    check_label,
    close_request,
    create_request,
)
from app.resumable.store import load_upload
from app.resumable.uploads import is_upload_id

MAIN_ID = "requests-screen"
# The most digits a number field may hold (a longer one is refused, not parsed).
MAX_DIGITS = 12


def _subjects(owner: str) -> tuple[str, ...]:
    # Files changing may be new folders to choose from.
    return requests_changed(owner), files_changed(owner)


def _whole(text: str, low: int, high: int) -> int | None:
    """A whole number typed in a form, if it is one within [low, high]."""
    text = text.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= MAX_DIGITS):
        return None
    value = int(text)
    return value if low <= value <= high else None


class _Refused(Exception):
    def __init__(self, typed: RequestForm) -> None:
        self.typed = typed


@dataclass(frozen=True, slots=True)
class _NewRequest:
    label: str
    expires_in: int | None
    max_files: int | None
    max_file_bytes: int | None
    folder: str


async def _checked(requests: Requests, owner: str, typed: RequestForm) -> _NewRequest:
    """The new request's fields from the form, or _Refused with an error for each field
    that cannot be used."""
    errors: dict[str, str] = {}
    fields: dict[str, object] = {}
    try:
        fields["label"] = check_label(typed.label)
    except RequestError as exc:
        errors["label"] = as_sentence(str(exc).replace("label", "what to ask for", 1))
    expiry = dict(EXPIRY_CHOICES)
    if typed.expires not in expiry:
        errors["expires"] = "Choose how long the request stays open."
    else:
        fields["expires_in"] = None if typed.expires == "never" else int(typed.expires)
    fields["max_files"] = None
    if typed.max_files.strip():
        fields["max_files"] = _whole(typed.max_files, 1, MAX_FILES)
        if fields["max_files"] is None:
            errors["max_files"] = f"Most files is a whole number from 1 to {MAX_FILES:,}."
    fields["max_file_bytes"] = None
    if typed.max_mib.strip():
        largest = requests.config.max_file_bytes // MIB
        mib = _whole(typed.max_mib, 1, largest)
        if mib is None:
            errors["max_mib"] = (
                f"Largest file is a whole number of MiB from 1 to {largest:,}, the most"
                " this server takes."
            )
        else:
            fields["max_file_bytes"] = mib * MIB
    folder = ROOT if typed.folder in ("", "root") else catalog_id(typed.folder)
    if folder != ROOT and await get_folder(requests.db, owner, folder) is None:
        # Another account's folder is "gone", as an unknown one.
        errors["folder"] = "That folder is gone: choose another one."
    fields["folder"] = folder
    if errors:
        raise _Refused(replace(typed, errors=errors))
    return _NewRequest(
        str(fields["label"]),
        _number_or_none(fields.get("expires_in")),
        _number_or_none(fields["max_files"]),
        _number_or_none(fields["max_file_bytes"]),
        folder,
    )


def _number_or_none(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _patch(w: Writer, *elements: HtmlElement | None, signals: dict | None = None) -> None:
    sse = SSE(w)
    for element in elements:
        if element is not None:
            sse.patch_elements(element)
    if signals:
        sse.patch_signals(signals)
    w.end()


def register_requests_screen(app: App, requests: Requests) -> None:
    gate, config, db, relay = requests.gate, requests.config, requests.db, requests.relay
    assets = requests.assets

    async def paint(owner: str, changed: frozenset[str] | None):
        parts = []
        if changed is None or requests_changed(owner) in changed:
            parts.append(requests_part(await open_requests(db, owner), gate.clock()))
        if changed is None or files_changed(owner) in changed:
            parts.append(request_folder_select(await folder_choices(db, owner)))
        return parts

    feeds: ScreenFeeds = screen_feeds(
        relay, _subjects, paint, cap=config.max_live_pages_per_account
    )

    async def render(c: Context, w: Writer, status: int = 200, **shown) -> None:
        """The whole screen (its GET, and a plain form's answer when not a redirect)."""
        who = principal(c)
        owner = who.account_id
        nonce = new_nonce()
        w.headers.set("content-security-policy", content_security_policy(nonce))
        typed: RequestForm | None = shown.get("typed")
        signals: dict[str, str | bool] = {"_offline": False, "_ended": False,
                   FOLDER_SIGNAL: typed.folder if typed else "root"}  # fmt: skip
        main = h.Main(
            {"id": MAIN_ID},
            data.signals(signals, if_missing=True),
            data.init(at.get(REQUESTS_LIVE.href(), retry="always")),
            requests_panel(
                await open_requests(db, owner), gate.clock(), await folder_choices(db, owner),
                **shown,
            ),
        )  # fmt: skip
        page = screen_page(assets, "Requests", who.account, "requests", main, nonce=nonce)
        w.html(page, status)

    async def show(c: Context, w: Writer) -> None:
        await render(c, w, notice=DONE.get(c.req.query.get("done") or ""))

    async def create(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        datastar = is_datastar(c)
        refused: RequestForm | None = None
        try:
            form = await read_form(c)
        except FormError as exc:
            form = {}
            refused = RequestForm(errors={"label": as_sentence(str(exc))})
        typed = RequestForm(
            label=form.get("label", ""),
            expires=form.get("expires", DEFAULT_EXPIRY),
            max_files=form.get("max_files", ""),
            max_mib=form.get("max_mib", ""),
            folder=form.get("folder", "root"),
        )
        try:
            if refused is not None:
                raise _Refused(refused)
            fields = await _checked(requests, owner, typed)
        except _Refused as exc:
            places = await folder_choices(db, owner)
            if datastar:
                _patch(w, request_form(places, exc.typed), notice_part())
            else:
                await render(c, w, 400, typed=exc.typed)
            return
        made, token = await create_request(
            db, owner=owner, label=fields.label, now=requests.now(),
            expires_in=fields.expires_in, max_files=fields.max_files,
            max_file_bytes=fields.max_file_bytes, folder=fields.folder,
        )  # fmt: skip
        relay.publish(requests_changed(owner), "created")
        link = config.public_url + REQUEST_PAGE.href(token)
        if datastar:
            places = await folder_choices(db, owner)
            listed = requests_part(await open_requests(db, owner), gate.clock())
            _patch(
                w, request_form(places), new_request_part(made.label, link), listed,
                notice_part(), signals={FOLDER_SIGNAL: "root"},
            )  # fmt: skip
            return
        await render(c, w, 200, new_request=(made.label, link))

    async def refuse_unknown(c: Context, w: Writer, message: str) -> None:
        if is_datastar(c):
            _patch(w, notice_part(message))
        else:
            await render(c, w, 404, notice=message)

    async def close(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        request_id = path_param(c, "request_id")
        known = REQUEST_ID_PATTERN.fullmatch(request_id) is not None
        if not known or not await close_request(db, request_id, owner, requests.now()):
            await refuse_unknown(c, w, "That request is not open (it was closed already).")
            return
        # Its unfinished uploads can never become files: their space goes back now.
        await requests.resumable.end_request(request_id)
        relay.publish(requests_changed(owner), "closed")
        if is_datastar(c):
            listed = requests_part(await open_requests(db, owner), gate.clock())
            _patch(w, listed, notice_part(DONE["closed"]))
            return
        w.redirect(f"{REQUESTS_SCREEN.href()}?done=closed", 303)

    async def cancel(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        request_id = path_param(c, "request_id")
        upload_id = path_param(c, "upload_id")
        state = None
        if REQUEST_ID_PATTERN.fullmatch(request_id) and is_upload_id(upload_id):
            state = await load_upload(db, upload_id)
        if (
            state is None
            or state.owner != owner
            or state.request_id != request_id
            or state.finished
        ):
            await refuse_unknown(c, w, "That upload is not unfinished (it ended already).")
            return
        await requests.resumable.terminate(state)
        if is_datastar(c):
            listed = requests_part(await open_requests(db, owner), gate.clock())
            _patch(w, listed, notice_part(DONE["cancelled"]))
            return
        w.redirect(f"{REQUESTS_SCREEN.href()}?done=cancelled", 303)

    async def live(c: Context, w: Writer) -> None:
        await serve_screen(
            c, w, owner=principal(c).account_id, feeds=feeds, paint=paint,
            still_signed_in=gate.still_signed_in, here=REQUESTS_SCREEN.href(), main_id=MAIN_ID,
        )  # fmt: skip

    gate.pages(REQUESTS_SCREEN)
    app.add(REQUESTS_SCREEN, show)
    app.add(REQUESTS_LIVE, live)
    app.add(REQUESTS_CREATE, create)
    app.add(REQUEST_CLOSE_FORM, close)
    app.add(REQUEST_UPLOAD_CANCEL_FORM, cancel)
