from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from stario import Assets, Writer, h
from stario.datastar import ModuleScript, data
from stario.exceptions import StarioError
from stario.markup import HtmlElement


@dataclass(frozen=True, slots=True)
class PageAssets:
    """Fingerprinted URLs of what every page loads; the bundle may be missing offline."""

    style_css: str
    datastar_js: str | None
    datastar_license: str
    favicon: str
    resumable_js: str

    @classmethod
    def from_assets(cls, assets: Assets) -> PageAssets:
        try:
            datastar_js: str | None = assets.href("vendor/datastar.js")
        except StarioError:
            datastar_js = None
        return cls(
            style_css=assets.href("style.css"),
            datastar_js=datastar_js,
            datastar_license=assets.href("DATASTAR-LICENSE.txt"),
            favicon=assets.href("favicon.svg"),
            resumable_js=assets.href("resumable.js"),
        )


def content_security_policy(nonce: str, *, connect: str = "") -> str:
    """Our own origin only. Datastar runs each expression as a script carrying
    `nonce` (its CSP mode, `<html data-nonce>`), so no 'unsafe-eval' is needed;
    without the nonce it would compile them with `Function` and need it. `connect`:
    one more origin the page's scripts may send to (the bucket, for a page that
    uploads straight to it)."""
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self'",
            "img-src 'self'",
            f"connect-src 'self' {connect}".rstrip(),
            "form-action 'self'",
            "base-uri 'none'",
            "object-src 'none'",
            "frame-ancestors 'none'",
        )
    )


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


# One expression for every Copy button: the value travels in the button's data-value,
# never pasted into JavaScript.
COPY_VALUE = "navigator.clipboard.writeText(el.dataset.value).then(() => el.textContent = 'Copied')"


def shown_once(
    slot_id: str, intro: str, name: str, outro: str, value: str, *, value_id: str | None = None
) -> HtmlElement:
    """A secret (a token, a link) shown in the tab that made it, with a Copy button."""
    return h.Div(
        {"id": slot_id, "class": "new-token", "role": "status"},
        h.P(intro, h.Strong(name), outro),
        h.Code({"class": "secret", "id": value_id}, value),
        h.Button(
            {"type": "button", "class": "button", "data-value": value},
            data.on("click", COPY_VALUE),
            "Copy",
        ),
    )


def slot_error(slot_id: str, message: str) -> HtmlElement:
    """A refusal, in words, where the new secret would have been shown."""
    return h.Div({"id": slot_id}, h.P({"class": "error", "role": "alert"}, message))


def page(
    assets: PageAssets,
    title: str,
    body: HtmlElement,
    nonce: str | None = None,
    modules: tuple[str, ...] = (),
) -> HtmlElement:
    """`nonce` puts Datastar in its CSP mode: expressions run as nonce'd scripts
    instead of through `Function`, so script-src needs no 'unsafe-eval'. `modules`:
    more of our own ES modules (URLs under /static) this page loads."""
    return h.HtmlDocument(
        {"lang": "en", "data-nonce": nonce},
        h.Head(
            h.Meta({"charset": "utf-8"}),
            h.Meta({"name": "viewport", "content": "width=device-width, initial-scale=1"}),
            h.Title(title),
            h.Link({"rel": "stylesheet", "href": assets.style_css}),
            h.Link({"rel": "icon", "href": assets.favicon, "type": "image/svg+xml"}),
            ModuleScript(assets.datastar_js) if assets.datastar_js else None,
            *[ModuleScript(url) for url in modules],
        ),
        h.Body(
            body,
            h.Footer(
                h.A({"href": assets.datastar_license}, "Datastar"),
                " is MIT-licensed third-party code, served from this server.",
            ),
        ),
    )


def send_page(w: Writer, make: Callable[[str], HtmlElement], status: int = 200) -> None:
    """A page made with a fresh nonce (`make(nonce)`), under the policy that allows it."""
    nonce = new_nonce()
    w.headers.set("content-security-policy", content_security_policy(nonce))
    w.html(make(nonce), status)
