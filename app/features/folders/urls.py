from stario import Route

API_FOLDERS = Route("POST /api/folders")
# "root" names the account's root folder.
API_FOLDER = Route("GET /api/folders/{folder_id}")
API_FOLDER_CHANGE = Route("PATCH /api/folders/{folder_id}")
API_FOLDER_DELETE = Route("DELETE /api/folders/{folder_id}")
API_FILES_MOVE = Route("POST /api/files/move")
