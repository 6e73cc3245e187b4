from stario import Route

API_FOLDERS = Route("POST /api/folders")
# "root" names the account's root folder.
API_FOLDER = Route("GET /api/folders/{folder_id}")
API_FOLDER_CHANGE = Route("PATCH /api/folders/{folder_id}")
API_FOLDER_DELETE = Route("DELETE /api/folders/{folder_id}")
API_FILES_MOVE = Route("POST /api/files/move")
# The page's commands (a form without scripts, Datastar with them).
FOLDER_CREATE = Route("POST /folders")
# What deleting a selection would remove, as words for the page to confirm.
FOLDERS_DOOMED = Route("POST /folders/doomed")
# Delete a selection of files and folders together.
FOLDERS_DELETE = Route("POST /folders/delete")
# A folder's actions as pages and plain forms (they work without scripts).
FOLDER_RENAME_PAGE = Route("GET /folders/{folder_id}/rename")
FOLDER_RENAME_FORM = Route("POST /folders/{folder_id}/rename")
FOLDER_MOVE_PAGE = Route("GET /folders/{folder_id}/move")
FOLDER_MOVE_FORM = Route("POST /folders/{folder_id}/move")
FOLDER_DELETE_PAGE = Route("GET /folders/{folder_id}/delete")
FOLDER_DELETE_FORM = Route("POST /folders/{folder_id}/delete")
