"""An account's API tokens: list, create (the token is shown once), revoke."""

from stario import App, Context, Relay, Writer
from stario.datastar import SSE

from app.access.gate import principal
from app.accounts.store import AccountError, create_token, list_tokens, revoke_token
from app.catalog.protocol import Database
from app.common.forms import FormError, read_form
from app.common.http import is_datastar, json_error, path_param
from app.common.shell import slot_error
from app.features.tokens.data import token_json, tokens_changed
from app.features.tokens.panel import LABEL_SIGNAL, NEW_TOKEN_ID, new_token_part
from app.features.tokens.urls import API_TOKEN_CREATE, API_TOKEN_REVOKE, API_TOKENS


def show_tokens(db: Database):
    async def handler(c: Context, w: Writer) -> None:
        tokens = await list_tokens(db, principal(c).account_id)
        w.json({"tokens": [token_json(t) for t in tokens]})

    return handler


def create(db: Database, relay: Relay[str]):
    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        datastar = is_datastar(c)
        try:
            form = await read_form(c)
            label = form.get("label") or form.get(LABEL_SIGNAL, "")
            info, secret = await create_token(db, owner, label)
        except (FormError, AccountError) as exc:
            if datastar:
                SSE(w).patch_elements(slot_error(NEW_TOKEN_ID, str(exc)))
                w.end()
                return
            json_error(w, 400, str(exc))
            return
        relay.publish(tokens_changed(owner), "created")
        if datastar:
            sse = SSE(w)
            sse.patch_elements(new_token_part(info, secret))
            sse.patch_signals({LABEL_SIGNAL: ""})
            w.end()
            return
        w.json({"token": token_json(info), "secret": secret}, 201)

    return handler


def revoke(db: Database, relay: Relay[str]):
    async def handler(c: Context, w: Writer) -> None:
        owner = principal(c).account_id
        if not await revoke_token(db, path_param(c, "token_id"), account_id=owner):
            json_error(w, 404, "no such token")
            return
        w.empty()
        relay.publish(tokens_changed(owner), "revoked")

    return handler


def register_tokens(app: App, db: Database, relay: Relay[str]) -> None:
    app.add(API_TOKENS, show_tokens(db))
    app.add(API_TOKEN_CREATE, create(db, relay))
    app.add(API_TOKEN_REVOKE, revoke(db, relay))
