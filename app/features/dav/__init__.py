"""WebDAV at /dav/ (RFC 4918 class 1 and 2, RFC 4331 quota): HTTP and XML over the
engine in app/webdav/. A path under /dav/ is a folder path of the signed-in account."""
