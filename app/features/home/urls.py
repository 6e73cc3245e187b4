from stario import Route

HOME = Route("GET /")
HOME_LIVE = Route("GET /live")
# Every id of the tab's list (its search, on every page): "Select all N matching".
SELECT_MATCHING = Route("GET /selection")
# The list or grid view, for a browser without scripts (with them, the page sets it).
VIEW = Route("POST /view")
