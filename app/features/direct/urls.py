from stario import Route

# An account's direct upload sessions (app/resumable/direct.py).
DIRECT_OPEN = Route("POST /api/uploads/direct")
DIRECT_STATUS = Route("GET /api/uploads/direct/{upload_id}")
DIRECT_COMPLETE = Route("POST /api/uploads/direct/{upload_id}/complete")
DIRECT_ABANDON = Route("DELETE /api/uploads/direct/{upload_id}")

# The same through a file request's link (its token is the credential; gate.requests).
REQUEST_DIRECT_OPEN = Route("POST /r/{token}/uploads/direct")
REQUEST_DIRECT_STATUS = Route("GET /r/{token}/uploads/direct/{upload_id}")
REQUEST_DIRECT_COMPLETE = Route("POST /r/{token}/uploads/direct/{upload_id}/complete")
REQUEST_DIRECT_ABANDON = Route("DELETE /r/{token}/uploads/direct/{upload_id}")


def session_href(base: str, upload_id: str) -> str:
    """A session's URL beside the URL it was opened at (`/api/uploads/direct` or
    `/r/TOKEN/uploads/direct`); relative, so https behind a proxy stays https."""
    return f"{base.rstrip('/')}/{upload_id}"
