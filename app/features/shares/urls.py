from stario import Route

API_SHARE_CREATE = Route("POST /api/files/{file_id}/shares")
# Collections: a folder with everything under it, or a set of files, behind one link.
API_FOLDER_SHARE_CREATE = Route("POST /api/folders/{folder_id}/shares")
API_COLLECTION_CREATE = Route("POST /api/shares")
API_SHARES = Route("GET /api/shares")
API_SHARE_REVOKE = Route("DELETE /api/shares/{share_id}")
# The link itself: anyone holding the token (see gate.shares).
SHARE_PAGE = Route("GET /s/{token}")
SHARE_UNLOCK = Route("POST /s/{token}")
SHARE_FILE = Route("GET /s/{token}/file")
SHARE_FILE_HEAD = Route("HEAD /s/{token}/file")
# A collection's files, each one (`?download=1`, `?preview=1` as /file), its thumbnails,
# and the whole as one ZIP.
SHARE_MEMBER = Route("GET /s/{token}/files/{file_id}")
SHARE_MEMBER_HEAD = Route("HEAD /s/{token}/files/{file_id}")
SHARE_MEMBER_THUMBNAIL = Route("GET /s/{token}/files/{file_id}/thumbnail")
SHARE_ZIP = Route("GET /s/{token}/zip")
SHARE_ZIP_HEAD = Route("HEAD /s/{token}/zip")
# A folder link that takes uploads: the code of /uploads, into the shared folder (its
# subfolders by ?path=), under the limits of the link's own file request.
SHARE_UPLOADS = Route("POST /s/{token}/uploads")
SHARE_UPLOAD_NAMED = Route("PUT /s/{token}/uploads/{name}")
SHARE_UPLOAD_UNNAMED = Route("PUT /s/{token}/uploads")
# The Shared screen: the account's links and collections, with their download logs.
SHARED = Route("GET /shared")
SHARED_LIVE = Route("GET /shared/live")
# A link's download log: its whole log page by page, as CSV, and as JSON; and the
# screen's Revoke (a plain form; Datastar posts the same form).
SHARED_LOG = Route("GET /shared/{share_id}/downloads")
SHARED_LOG_CSV = Route("GET /shared/{share_id}/downloads.csv")
SHARED_REVOKE = Route("POST /shared/{share_id}/revoke")
API_SHARE_DOWNLOADS = Route("GET /api/shares/{share_id}/downloads")
# Sharing a file or a folder without scripts: the form as a page, and its post.
FILE_SHARE_PAGE = Route("GET /files/{file_id}/share")
FILE_SHARE_FORM = Route("POST /files/{file_id}/share")
FOLDER_SHARE_PAGE = Route("GET /folders/{folder_id}/share")
FOLDER_SHARE_FORM = Route("POST /folders/{folder_id}/share")
