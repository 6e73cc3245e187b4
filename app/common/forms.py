"""Small forms read whole: sign-in, API tokens, a share link's password."""

import asyncio
from urllib.parse import parse_qs

from stario import Context, h
from stario.datastar import at, data
from stario.exceptions import ClientDisconnected, RequestBodyError
from stario.markup import HtmlElement
from stario.markup.types import Attrs

from app.common.http import NotJson, parse_json

MAX_FORM_BYTES = 16 * 1024
# Far more fields than any of the app's forms has; a body with more is refused (400),
# as parse_qs would otherwise raise a bare ValueError (a 500).
MAX_FORM_FIELDS = 20
# A form body must arrive whole in this time. Stario's body timeout notices only
# silence, so without it a client sending a byte every few seconds would hold its
# connection forever (uploads have --min-upload-rate instead; a form is too small
# to average a rate over).
FORM_SECONDS = 20.0


class FormError(Exception):
    pass


async def read_form(c: Context) -> dict[str, str]:
    """The fields of a small urlencoded form or JSON object (Datastar signals)."""
    media_type = (c.req.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    try:
        async with asyncio.timeout(FORM_SECONDS):
            body = await c.req.body(max_size=MAX_FORM_BYTES)
    except (RequestBodyError, ClientDisconnected):
        raise FormError("the form could not be read (too large or cut off)") from None
    except TimeoutError:
        raise FormError(f"the form took more than {FORM_SECONDS:g} seconds to arrive") from None
    if media_type == "application/json":
        try:
            data = parse_json(body)
        except NotJson as exc:
            raise FormError(str(exc)) from None
        if not isinstance(data, dict):
            raise FormError("the body is not a JSON object")
        return {key: value for key, value in data.items() if isinstance(value, str)}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise FormError("the form is not UTF-8") from None
    try:
        fields = parse_qs(text, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:  # parse_qs's "Max number of fields exceeded"
        raise FormError(f"the form has more than {MAX_FORM_FIELDS} fields") from None
    return {key: values[-1] for key, values in fields.items()}


# Forms that work without scripts (lane A) ---------------------------------------------


def enhanced(action: str, *, confirm: str | None = None) -> Attrs:
    """What makes a plain `<form method="post" action=...>` a Datastar one: the same
    form, sent by Datastar to the same URL (which then answers with patches). `confirm`:
    a question asked first, read from the form's `data-confirm` (never pasted into the
    expression, so names cannot break out of it)."""
    post = at.post(action, content_type="form", retry_max_count=0)
    expression = f"confirm(el.dataset.confirm) && {post}" if confirm is not None else post
    return data.on("submit", expression, prevent=True)


# What an element's attribute may be (Stario's markup takes these).
type AttributeValue = str | bool | int | float | None


def post_form(
    action: str,
    *children: HtmlElement | str | None,
    confirm: str | None = None,
    **attributes: AttributeValue,
) -> HtmlElement:
    """A form posting to `action` that needs no script, enhanced by Datastar."""
    return h.Form(
        {"method": "post", "action": action, "data-confirm": confirm, **attributes},
        enhanced(action, confirm=confirm),
        *children,
    )


def error_id(field_id: str) -> str:
    return f"{field_id}-error"


def form_field(
    label: str,
    field_id: str,
    control: dict[str, AttributeValue],
    error: str | None = None,
    *,
    kind: str = "input",
    children: tuple[HtmlElement | str, ...] = (),
) -> HtmlElement:
    """A labelled input (or select) with its error, if any, right under it: announced
    (role=alert), tied to the input (aria-describedby, aria-invalid) and focused when a
    page is rendered for it."""
    attributes: dict[str, AttributeValue] = {"id": field_id, **control}
    if error:
        attributes |= {
            "aria-invalid": "true",
            "aria-describedby": error_id(field_id),
            "autofocus": True,
        }
    make = h.Select if kind == "select" else h.Input
    # A page renders `autofocus`; a Datastar patch brings focus here itself.
    focus = data.init("el.focus()") if error else None
    return h.Div(
        {"class": "field"},
        h.Label({"for": field_id}, label),
        make(attributes, focus, *children),
        h.P({"id": error_id(field_id), "class": "error field-error", "role": "alert"}, error or ""),
    )  # fmt: skip


def as_sentence(message: str) -> str:
    """An engine's refusal ("the name is taken") as a sentence a form shows beside its
    field ("The name is taken.")."""
    message = message.strip().rstrip(".")
    return message[:1].upper() + message[1:] + "."
