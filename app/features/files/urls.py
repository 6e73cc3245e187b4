from stario import Route

API_FILES = Route("GET /api/files")
FILE = Route("GET /files/{file_id}")
# Stario answers HEAD only on routes registered for it.
FILE_HEAD = Route("HEAD /files/{file_id}")
FILE_DELETE = Route("DELETE /files/{file_id}")
FILE_RENAME = Route("PATCH /files/{file_id}")
API_FILES_DELETE = Route("POST /api/files/delete")
# A file's actions as pages and plain forms (they work without scripts; the page's
# dialogs post the same forms with Datastar).
FILE_RENAME_PAGE = Route("GET /files/{file_id}/rename")
FILE_RENAME_FORM = Route("POST /files/{file_id}/rename")
FILE_MOVE_PAGE = Route("GET /files/{file_id}/move")
FILE_MOVE_FORM = Route("POST /files/{file_id}/move")
FILE_DELETE_PAGE = Route("GET /files/{file_id}/delete")
FILE_DELETE_FORM = Route("POST /files/{file_id}/delete")
