from stario import Route

UPLOADS = Route("POST /uploads")
# `curl -T file http://host/uploads/` appends the file's name to the URL.
UPLOAD_NAMED = Route("PUT /uploads/{name}")
# Where `curl -T - http://host/uploads/` (no name to append) lands after Stario's 308.
UPLOAD_UNNAMED = Route("PUT /uploads")
