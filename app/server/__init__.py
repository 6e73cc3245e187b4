"""HTTP under Stario 5.1.1: what this server adds where Stario falls short.

Each module covers gaps found by reading Stario 5.1.1's source or measuring it
against real clients (the tests named below pin what was measured); if a later
Stario closes one, its module is the one place to change. One entry per gap: what
Stario lacks; how that was seen; where it is covered.

- No client address for a handler: `Context` has no peer, only the protocol sees
  the socket (read in stario.http); peers.py files each connection under its
  disconnect future (`peer_address`, `ClientAddresses` for trusted proxies).
- No connection cap unless told (`ServerConfig.max_connections` defaults to None),
  and the open-file limit left as it is, often a soft 1,024 under systemd (read):
  limits.py raises the soft limit and derives the caps from it.
- Past the total cap only a fixed 503, and nothing per address (read;
  tests/server/test_limits_server.py): peers.py refuses one address's excess with a 429.
- Timeouts notice only silence, not a crawl (the stall timeout is an inactivity
  sweep once a second, measured: one byte every few seconds holds a connection):
  peers.py (`RateFloorProtocol`) holds a request head and a small body Stario
  buffers to the minimum upload rate, rate.py (`RateFloor`, `RateWindow`,
  `at_least`) a body the handler streams.
- A full connection table turns every newcomer away while slow clients hold it
  (measured, tests/server/test_limits_server.py): peers.py (`reap`) closes the
  connections furthest behind the rate.
- A trailing slash is answered with its own 308 before routing, which tus clients
  under Node and `curl -T -` do not follow, nor WebDAV clients for PROPFIND or MKCOL
  (observed): peers.py (`_unslash`) hands `/tus/`, `/uploads/` and `/dav/.../` to
  their routes, and tells a WebDAV handler a slash was taken off.
- Its own early answers (413 over the body cap, 400 for a target it will not
  route, 408 for a stalled small body, 431, the 308) are plain text written from
  compiled code with no hook (measured, pinned by tests/unit/test_early_answers.py):
  early_answers.py rewrites them as JSON in words on the way out.
- A close after a refusal, with the request body still arriving, resets the
  connection and the client never reads the answer (measured,
  tests/server/test_lingering_server.py): lingering.py lingers before the close.
- `same_origin()` refuses cross-site commands in plain text only (read): origin.py
  is its rule, copied, answered in JSON on the API and file routes.
- No CORS (read): cors.py answers preflights from the route tree and serves the
  origins `--cors-origins` lists, with a token only (tests/http/test_cors.py).
- `Vary: Accept-Encoding` only on the answers it did compress, decided after the
  head is sent (read, and REDbot's BAD): vary.py adds it before every handler.
- No interim (1xx) responses: `Writer.write_headers(104)` raises (probed):
  interim.py writes one to the connection's transport before the answer starts
  (the IETF draft's 104, tests/server/test_ietf_optimistic.py).
- Reading a request body takes care (measured): a body up to 256 KiB arrives whole
  before the handler, a chunked body over the cap is a bare 413, and a client gone
  between chunks ends `stream()` normally with the body cut short: body.py, the
  request-body reader.

May import: stario, app.config, app.common and the engines (the rate reader ends a
body with the ingest pipeline's `IngestError`). Imported by app.main, app.cli, the
access gate and the features; engines never import it.
"""
