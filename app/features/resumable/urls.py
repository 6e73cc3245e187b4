from stario import Route

# The creation URL of both protocols (tus 1.0, the IETF draft); the upload URLs below.
CREATE = Route("POST /tus/")
CAPABILITIES = Route("OPTIONS /tus/")
UPLOAD_HEAD = Route("HEAD /tus/{upload_id}")
UPLOAD_PATCH = Route("PATCH /tus/{upload_id}")
UPLOAD_DELETE = Route("DELETE /tus/{upload_id}")
UPLOAD_OPTIONS = Route("OPTIONS /tus/{upload_id}")
# The draft's offset retrieval by GET (answered as HEAD is, without content).
UPLOAD_GET = Route("GET /tus/{upload_id}")
# Clients behind proxies that pass only GET and POST send `X-HTTP-Method-Override`.
UPLOAD_OVERRIDE = Route("POST /tus/{upload_id}")


# The same through a file request's link (its token is the credential; see gate.requests).
REQUEST_CREATE = Route("POST /r/{token}/tus/")
REQUEST_CAPABILITIES = Route("OPTIONS /r/{token}/tus/")
REQUEST_UPLOAD_HEAD = Route("HEAD /r/{token}/tus/{upload_id}")
REQUEST_UPLOAD_PATCH = Route("PATCH /r/{token}/tus/{upload_id}")
REQUEST_UPLOAD_DELETE = Route("DELETE /r/{token}/tus/{upload_id}")
REQUEST_UPLOAD_OPTIONS = Route("OPTIONS /r/{token}/tus/{upload_id}")
REQUEST_UPLOAD_GET = Route("GET /r/{token}/tus/{upload_id}")
REQUEST_UPLOAD_OVERRIDE = Route("POST /r/{token}/tus/{upload_id}")

# The same through a folder link that takes uploads (its token, and password if any).
SHARE_CREATE = Route("POST /s/{token}/tus/")
SHARE_CAPABILITIES = Route("OPTIONS /s/{token}/tus/")
SHARE_UPLOAD_HEAD = Route("HEAD /s/{token}/tus/{upload_id}")
SHARE_UPLOAD_PATCH = Route("PATCH /s/{token}/tus/{upload_id}")
SHARE_UPLOAD_DELETE = Route("DELETE /s/{token}/tus/{upload_id}")
SHARE_UPLOAD_OPTIONS = Route("OPTIONS /s/{token}/tus/{upload_id}")
SHARE_UPLOAD_GET = Route("GET /s/{token}/tus/{upload_id}")
SHARE_UPLOAD_OVERRIDE = Route("POST /s/{token}/tus/{upload_id}")

# `OPTIONS` on the single-request upload URLs, which create draft uploads too
# (app/features/uploads, requests and shares): the draft's limits (`Upload-Limit`).
UPLOADS_OPTIONS = Route("OPTIONS /uploads")
UPLOAD_NAMED_OPTIONS = Route("OPTIONS /uploads/{name}")
REQUEST_UPLOADS_OPTIONS = Route("OPTIONS /r/{token}/uploads")
REQUEST_UPLOAD_NAMED_OPTIONS = Route("OPTIONS /r/{token}/uploads/{name}")
SHARE_UPLOADS_OPTIONS = Route("OPTIONS /s/{token}/uploads")
SHARE_UPLOAD_NAMED_OPTIONS = Route("OPTIONS /s/{token}/uploads/{name}")


def upload_href(upload_id: str) -> str:
    """Relative, so an https address behind a proxy never turns into http."""
    return f"/tus/{upload_id}"


def request_upload_href(token: str, upload_id: str) -> str:
    """An upload made through a file request's link, under that link."""
    return f"/r/{token}/tus/{upload_id}"


def share_upload_href(token: str, upload_id: str) -> str:
    """An upload made through a folder link, under that link."""
    return f"/s/{token}/tus/{upload_id}"
