from stario import Route

ACCOUNT = Route("GET /account")
ACCOUNT_LIVE = Route("GET /account/live")
