"""The methods WebDAV clients send (RFC 4918 class 1 and 2 over HTTP's): the routes at
/dav/ take each of them, and the CORS preflight asks the router about each."""

DAV_METHODS = (
    "OPTIONS", "PROPFIND", "PROPPATCH", "GET", "HEAD", "PUT", "DELETE", "MKCOL", "COPY",
    "MOVE", "LOCK", "UNLOCK",
)  # fmt: skip
