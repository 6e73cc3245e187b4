from stario import Route

ADMIN = Route("GET /admin")
ADMIN_LIVE = Route("GET /admin/live")
# The server panel again (SSE), every few seconds while the screen is open.
ADMIN_SERVER = Route("GET /admin/server")
# The admin's commands: plain form posts (303 back), enhanced by Datastar.
ADMIN_CREATE = Route("POST /admin/accounts")
ADMIN_INVITE = Route("POST /admin/invitations")
ADMIN_QUOTA = Route("POST /admin/quota")
ADMIN_RESET = Route("POST /admin/resets")
ADMIN_REMOVE = Route("POST /admin/remove")
