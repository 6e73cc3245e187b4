"""Small forms read whole: sign-in, API tokens, a share link's password."""

import asyncio
from urllib.parse import parse_qs

from stario import Context
from stario.exceptions import ClientDisconnected, RequestBodyError

from app.common.http import NotJson, parse_json

MAX_FORM_BYTES = 16 * 1024
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
    return {key: values[-1] for key, values in parse_qs(text, max_num_fields=20).items()}
