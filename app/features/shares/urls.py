from stario import Route

API_SHARE_CREATE = Route("POST /api/files/{file_id}/shares")
API_SHARES = Route("GET /api/shares")
API_SHARE_REVOKE = Route("DELETE /api/shares/{share_id}")
# The link itself: anyone holding the token (see gate.shares).
SHARE_PAGE = Route("GET /s/{token}")
SHARE_UNLOCK = Route("POST /s/{token}")
SHARE_FILE = Route("GET /s/{token}/file")
SHARE_FILE_HEAD = Route("HEAD /s/{token}/file")
