"""The page's "API tokens" panel: the list the stream repaints, and the new token,
shown once, in the tab that made it."""

from stario import h
from stario.datastar import at, data
from stario.markup import HtmlElement

from app.accounts.store import TokenInfo
from app.common.shell import shown_once
from app.features.tokens.urls import API_TOKEN_CREATE, API_TOKEN_REVOKE

TOKENS_ID = "tokens"
NEW_TOKEN_ID = "new-token"
# The page's signal for the label field (Datastar posts every included signal).
LABEL_SIGNAL = "tokenLabel"

REVOKE_ONE = (
    "confirm('Revoke the token ' + el.dataset.name + '? Scripts using it stop working.')"
    " && @delete(el.dataset.url, {filterSignals: {include: '^$'}, retryMaxCount: 0})"
)


def _when(iso: str | None) -> str:
    return "never" if not iso else iso[:10] + " " + iso[11:16] + " UTC"


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
                    h.Button(
                        {
                            "type": "button",
                            "class": "button danger",
                            "data-url": API_TOKEN_REVOKE.href(t.id),
                            "data-name": t.label or t.id,
                            "data-action": "revoke",
                            "aria-label": f"Revoke token {t.label or t.id}",
                        },
                        data.on("click", REVOKE_ONE),
                        "Revoke",
                    ),
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
    )


def tokens_panel(tokens: list[TokenInfo]) -> HtmlElement:
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
        h.Form(
            {"class": "token-form"},
            data.on(
                "submit",
                at.post(API_TOKEN_CREATE.href(), include=f"^{LABEL_SIGNAL}$", retry_max_count=0),
                prevent=True,
            ),
            h.Label(
                {"class": "field"},
                h.Span("Label"),
                h.Input(
                    {"type": "text", "maxlength": 100, "placeholder": "e.g. backup script"},
                    data.bind(LABEL_SIGNAL),
                ),
            ),
            h.Button({"type": "submit", "class": "button primary"}, "Create token"),
        ),
        h.Div({"id": NEW_TOKEN_ID}),
        tokens_part(tokens),
    )
