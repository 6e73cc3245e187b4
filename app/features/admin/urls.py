from stario import Route

ADMIN = Route("GET /admin")
ADMIN_LIVE = Route("GET /admin/live")
