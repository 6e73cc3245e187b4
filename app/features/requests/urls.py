from stario import Route

API_REQUEST_CREATE = Route("POST /api/requests")
API_REQUESTS = Route("GET /api/requests")
API_REQUEST_CLOSE = Route("DELETE /api/requests/{request_id}")
# The owner cancels an unfinished (resumable) upload made through the request.
API_REQUEST_UPLOAD_CANCEL = Route("DELETE /api/requests/{request_id}/uploads/{upload_id}")
# The link itself: anyone holding the token (see gate.requests).
REQUEST_PAGE = Route("GET /r/{token}")
REQUEST_UPLOADS = Route("POST /r/{token}/uploads")
REQUEST_UPLOAD_NAMED = Route("PUT /r/{token}/uploads/{name}")
# Where `curl -T - .../uploads/` (no name to append) lands after Stario's 308.
REQUEST_UPLOAD_UNNAMED = Route("PUT /r/{token}/uploads")
# The Requests screen: the account's file requests.
REQUESTS_SCREEN = Route("GET /requests")
REQUESTS_LIVE = Route("GET /requests/live")
# The screen's commands: plain form posts (303 back, or the screen with the error next
# to its field; a new request's link in the answer), which Datastar sends as the same
# form and gets patches for.
REQUESTS_CREATE = Route("POST /requests")
REQUEST_CLOSE_FORM = Route("POST /requests/{request_id}/close")
REQUEST_UPLOAD_CANCEL_FORM = Route("POST /requests/{request_id}/uploads/{upload_id}/cancel")
