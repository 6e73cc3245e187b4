from stario import Route

DAV_PREFIX = "/dav"
# Every method WebDAV clients send; each is registered on the root and below it
# (Stario's `{path...}` does not match an empty rest).
DAV_METHODS = (
    "OPTIONS", "PROPFIND", "PROPPATCH", "GET", "HEAD", "PUT", "DELETE", "MKCOL", "COPY",
    "MOVE", "LOCK", "UNLOCK",
)  # fmt: skip
DAV_ROOT_ROUTES = {method: Route(f"{method} {DAV_PREFIX}") for method in DAV_METHODS}
DAV_PATH_ROUTES = {method: Route(f"{method} {DAV_PREFIX}/{{path...}}") for method in DAV_METHODS}
