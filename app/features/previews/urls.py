from stario import Route

THUMBNAIL = Route("GET /files/{file_id}/thumbnail")
# Stario answers HEAD only on routes registered for it.
THUMBNAIL_HEAD = Route("HEAD /files/{file_id}/thumbnail")
