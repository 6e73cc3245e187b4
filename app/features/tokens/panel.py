"""The Account screen's "API tokens" panel: the list the stream repaints, and the new
token, shown once, in the answer to the form that made it. Every action is a plain
form (it works without scripts) that Datastar sends as the same form."""

from stario import h
from stario.markup import HtmlElement

from app.accounts.store import MAX_LABEL_CHARS, TokenInfo
from app.common.forms import form_field, post_form
from app.common.shell import shown_once, slot_error
from app.features.account.urls import ACCOUNT_TOKEN_CREATE, ACCOUNT_TOKEN_REVOKE

TOKENS_ID = "tokens"
NEW_TOKEN_ID = "new-token"
TOKEN_FORM_ID = "token-form"
LABEL_FIELD_ID = "token-label"
# The page's signal for the label field, as older pages sent it to /api/tokens.
LABEL_SIGNAL = "tokenLabel"


def _when(iso: str | None) -> str:
    return "never" if not iso else iso[:10] + " " + iso[11:16] + " UTC"


def _revoke_form(token: TokenInfo) -> HtmlElement:
    name = token.label or token.id
    return post_form(
        ACCOUNT_TOKEN_REVOKE.href(token.id),
        h.Button(
            {"type": "submit", "class": "button danger", "aria-label": f"Revoke the token {name}"},
            "Revoke",
        ),
        confirm=f"Revoke the token {name}? Scripts using it stop working.",
        **{"class": "inline-form"},
    )


def tokens_part(tokens: list[TokenInfo]) -> HtmlElement:
    if not tokens:
        return h.Div({"id": TOKENS_ID}, h.P({"class": "empty"}, "No API tokens."))
    return h.Div(
        {"id": TOKENS_ID},
        h.Ul(
            {"class": "token-list"},
            *[
                h.Li(
                    {"class": "token", "id": f"token-{t.id}"},
                    h.Div(
                        {"class": "file-main"},
                        h.Span({"class": "file-name"}, t.label or "(no label)"),
                        h.Span(
                            {"class": "file-meta"},
                            h.Code(t.id),
                            h.Span(f"created {_when(t.created_at)}"),
                            h.Span(f"last used {_when(t.last_used_at)}"),
                        ),
                    ),
                    _revoke_form(t),
                )
                for t in tokens
            ],
        ),
    )


def new_token_part(info: TokenInfo, secret: str) -> HtmlElement:
    return shown_once(
        NEW_TOKEN_ID,
        "New token ",
        info.label or info.id,
        ". Copy it now: it is shown only this once.",
        secret,
        value_id="new-token-secret",
    )


def token_form(label: str = "", error: str | None = None) -> HtmlElement:
    """`#token-form`; after a refusal, the label as typed and the reason under it."""
    return post_form(
        ACCOUNT_TOKEN_CREATE.href(),
        form_field(
            "Label",
            LABEL_FIELD_ID,
            {"type": "text", "name": "label", "maxlength": MAX_LABEL_CHARS, "value": label,
             "placeholder": "e.g. backup script"},
            error,
        ),
        h.Button({"type": "submit", "class": "button primary"}, "Create token"),
        id=TOKEN_FORM_ID,
        **{"class": "token-form"},
    )  # fmt: skip


def tokens_panel(
    tokens: list[TokenInfo],
    *,
    new_token: tuple[TokenInfo, str] | None = None,
    label: str = "",
    error: str | None = None,
) -> HtmlElement:
    return h.Section(
        {"id": "api-tokens", "aria-labelledby": "tokens-title"},
        h.H2({"id": "tokens-title"}, "API tokens"),
        h.P(
            {"class": "note"},
            "Tokens let scripts act as you: send one as ",
            h.Code("Authorization: Bearer TOKEN"),
            ", or as the password of HTTP Basic (",
            h.Code("curl -u :TOKEN"),
            "). Revoke a token the moment it may have leaked.",
        ),
        token_form(label, error),
        new_token_part(*new_token) if new_token else h.Div({"id": NEW_TOKEN_ID}),
        tokens_part(tokens),
    )


def new_token_error(message: str) -> HtmlElement:
    return slot_error(NEW_TOKEN_ID, message)
