from stario import Route

API_ARCHIVES = Route("POST /api/archives")
ARCHIVE = Route("GET /api/archives/{token}")
# Stario answers HEAD only on routes registered for it.
ARCHIVE_HEAD = Route("HEAD /api/archives/{token}")
