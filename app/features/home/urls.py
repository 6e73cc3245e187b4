from stario import Route

HOME = Route("GET /")
