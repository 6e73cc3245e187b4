from stario import Route

INVITE = Route("GET /invite")
INVITE_SUBMIT = Route("POST /invite")
RESET = Route("GET /reset")
RESET_SUBMIT = Route("POST /reset")
