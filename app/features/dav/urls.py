from stario import Route

from app.webdav.methods import DAV_METHODS

DAV_PREFIX = "/dav"
# Every method WebDAV clients send is registered on the root and below it (Stario's
# `{path...}` does not match an empty rest).
DAV_ROOT_ROUTES = {method: Route(f"{method} {DAV_PREFIX}") for method in DAV_METHODS}
DAV_PATH_ROUTES = {method: Route(f"{method} {DAV_PREFIX}/{{path...}}") for method in DAV_METHODS}
