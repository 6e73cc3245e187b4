from stario import Route

ACCOUNT = Route("GET /account")
ACCOUNT_LIVE = Route("GET /account/live")
# The screen's commands: plain form posts (303 back, or the screen with the error next
# to its field), which Datastar sends as the same form and gets patches for.
ACCOUNT_PASSWORD = Route("POST /account/password")
ACCOUNT_SESSION_END = Route("POST /account/sessions/{session_id}/end")
ACCOUNT_SESSIONS_END_OTHERS = Route("POST /account/sessions/end-others")
ACCOUNT_TOKEN_CREATE = Route("POST /account/tokens")
ACCOUNT_TOKEN_REVOKE = Route("POST /account/tokens/{token_id}/revoke")
