"""Signing in through TestClient as a person and as a script does: forms, cookies and
a client that starts with no session."""

import time

from stario.testing import TestClient
from tests.support.fixtures import (
    PASSWORD,
    SETUP_TOKEN,
    request_policy,
)

from app.access.gate import MARKER_CHECK_SECONDS
from app.config import Config
from app.main import make_bootstrap

FORM = {"content-type": "application/x-www-form-urlencoded"}


def form(**fields: str) -> bytes:
    from urllib.parse import urlencode

    return urlencode(fields).encode()


def fresh_client(config: Config, **kwargs) -> TestClient:
    return TestClient(
        make_bootstrap(config, setup_token=SETUP_TOKEN),
        requests=request_policy(config),
        follow_redirects=False,
        base_url=config.public_url,
        **kwargs,
    )


def cookie_header(response) -> str:
    [value] = [v for k, v in response.headers.items() if k == "set-cookie"]
    return value


async def sign_in(client: TestClient, name: str = "owner", password: str = PASSWORD, **extra):
    return await client.post(
        "/login", content=form(name=name, password=password, **extra), headers=FORM
    )


# A `stowage` command's credential change (a password, a removed account) reaches a
# running server on SQLite at its gate's next look at the marker file, at most
# MARKER_CHECK_SECONDS later (app/access/gate.py: a stat per request cost a fifth of the
# small-upload throughput). Since the commands stopped importing the web app they can
# finish inside that window, so a test waits it out before asking again.
CREDENTIAL_CHANGE_SEEN_SECONDS = MARKER_CHECK_SECONDS + 0.05


def until_a_credential_change_is_seen() -> None:
    time.sleep(CREDENTIAL_CHANGE_SEEN_SECONDS)
