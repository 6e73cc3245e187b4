from stario import Route

THUMBNAIL = Route("GET /files/{file_id}/thumbnail")
# Stario answers HEAD only on routes registered for it.
THUMBNAIL_HEAD = Route("HEAD /files/{file_id}/thumbnail")
# A file's preview in the Files screen: Datastar's GET, answered with a patch of
# `#preview` (the list's search, sort and folder in the query give next/previous).
PREVIEW = Route("GET /files/{file_id}/preview")
# A full-size image: its rendition when the original needs one, else the original.
PREVIEW_IMAGE = Route("GET /files/{file_id}/preview-image")
PREVIEW_IMAGE_HEAD = Route("HEAD /files/{file_id}/preview-image")
# A file shown inside the page's frame (a PDF): the file itself, which the page of
# our own origin may frame (every other answer says `X-Frame-Options: DENY`).
PREVIEW_FILE = Route("GET /files/{file_id}/preview-file")
PREVIEW_FILE_HEAD = Route("HEAD /files/{file_id}/preview-file")
