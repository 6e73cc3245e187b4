from stario import Route

HOME = Route("GET /")
HOME_LIVE = Route("GET /live")
