"""Signing in through TestClient as a person and as a script does: forms, cookies and
a client that starts with no session."""

from stario.testing import TestClient
from tests.support.fixtures import (
    PASSWORD,
    SETUP_TOKEN,
    request_policy,
)

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
