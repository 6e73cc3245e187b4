from stario import Route

# The creation URL of both protocols (tus 1.0, the IETF draft); the upload URLs below.
CREATE = Route("POST /tus/")
CAPABILITIES = Route("OPTIONS /tus/")
UPLOAD_HEAD = Route("HEAD /tus/{upload_id}")
UPLOAD_PATCH = Route("PATCH /tus/{upload_id}")
UPLOAD_DELETE = Route("DELETE /tus/{upload_id}")
UPLOAD_OPTIONS = Route("OPTIONS /tus/{upload_id}")
# Clients behind proxies that pass only GET and POST send `X-HTTP-Method-Override`.
UPLOAD_OVERRIDE = Route("POST /tus/{upload_id}")


def upload_href(upload_id: str) -> str:
    """Relative, so an https address behind a proxy never turns into http."""
    return f"/tus/{upload_id}"
