"""Waiting out a pre-signed URL. SigV4 dates are whole seconds (`X-Amz-Date`,
truncated), so a URL signed for N seconds may have little more than N - 1 left by the
time it is first used: a test signs for 2 or more and counts the wait from the URL's
own date, not from its own clock."""

import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

# A URL's shortest life that still leaves its first use a whole second under load.
SHORTEST_SECONDS = 2


def signed_at(url: str) -> float:
    """The URL's signing time (its `X-Amz-Date`), as a Unix time."""
    stamp = parse_qs(urlsplit(url).query)["X-Amz-Date"][0]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()


def seconds_until_expired(url: str) -> float:
    """How long from now until the store refuses `url` as expired (with a margin)."""
    lifetime = int(parse_qs(urlsplit(url).query)["X-Amz-Expires"][0])
    return max(0.0, signed_at(url) + lifetime + 1.5 - time.time())
