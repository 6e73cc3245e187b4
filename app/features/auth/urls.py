from stario import Route

SETUP = Route("GET /setup")
SETUP_SUBMIT = Route("POST /setup")
LOGIN = Route("GET /login")
LOGIN_SUBMIT = Route("POST /login")
LOGOUT = Route("POST /logout")
