from stario import Route

API_FILES = Route("GET /api/files")
FILE = Route("GET /files/{file_id}")
# Stario answers HEAD only on routes registered for it.
FILE_HEAD = Route("HEAD /files/{file_id}")
FILE_DELETE = Route("DELETE /files/{file_id}")
FILE_RENAME = Route("PATCH /files/{file_id}")
API_FILES_DELETE = Route("POST /api/files/delete")
