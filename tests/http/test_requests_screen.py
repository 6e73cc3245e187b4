"""The Requests screen's forms (lane A of issue 25): create a request (its link shown
once in the answer), close one, cancel an unfinished upload; each as a plain form
(no scripts: 303 back, or the screen with the error next to its field) and as
Datastar sends the same form. The JSON API is tests/http/test_requests.py's."""

import re

from tests.support.accounts import FORM, form, fresh_client
from tests.support.fixtures import add_account, bearer

LINK = re.compile(r"http://[^\"<]+(/r/[A-Za-z0-9_-]{32})")
HTML = {**FORM, "accept": "text/html"}
DATASTAR = {**FORM, "datastar-request": "true"}
TUS_CREATE = {"tus-resumable": "1.0.0", "upload-length": "10"}


def error_of(page: str, field_id: str) -> str:
    found = re.search(rf'<p id="{field_id}-error"[^>]*>([^<]*)</p>', page)
    assert found, f"no error slot for {field_id}"
    return found.group(1)


async def test_a_request_is_made_by_a_plain_form_and_its_link_shown_once(config):
    _, token = await add_account(config, "owner")
    async with fresh_client(config, headers=bearer(token)) as client:
        folder = (await client.post("/api/folders", json={"name": "Inbox"})).json()["folder"]
        body = form(label="Tax papers", expires="86400", max_files="3", max_mib="2",
                    folder=folder["id"])  # fmt: skip
        made = await client.post("/requests", content=body, headers=HTML)
        assert made.status_code == 200 and "shown only this once" in made.text
        [link] = set(LINK.findall(made.text))
        assert 'id="request-label-error" class="error field-error" role="alert"></p>' in made.text
        [listed] = (await client.get("/api/requests")).json()["requests"]
        assert (listed["label"], listed["max_files"], listed["max_file_bytes"]) == (
            "Tax papers", 3, 2 * 1024 * 1024,
        )  # fmt: skip
        assert listed["folder_path"] == "/Inbox/"
        assert (await client.get(link)).status_code == 200
        # The screen itself never shows the link again.
        assert link not in (await client.get("/requests")).text


async def test_a_refused_request_keeps_what_was_typed_and_says_why_by_its_field(config):
    _, token = await add_account(config, "owner")
    _, other = await add_account(config, "other")
    async with fresh_client(config, headers=bearer(token)) as client:
        theirs = await client.post("/api/folders", json={"name": "T"}, headers=bearer(other))
        body = form(label="  ", expires="forever", max_files="0", max_mib="x",
                    folder=theirs.json()["folder"]["id"])  # fmt: skip
        refused = await client.post("/requests", content=body, headers=HTML)
        assert refused.status_code == 400
        assert "must not be empty" in error_of(refused.text, "request-label")
        assert error_of(refused.text, "request-expiry") == "Choose how long the request stays open."
        assert "from 1 to 100,000" in error_of(refused.text, "request-max-files")
        assert "whole number of MiB" in error_of(refused.text, "request-max-mib")
        assert "That folder is gone" in error_of(refused.text, "request-folder")
        assert (await client.get("/api/requests")).json()["requests"] == []

        body = form(label="Photos", expires="3600", max_files="5", max_mib="99999999")
        refused = await client.post("/requests", content=body, headers=HTML)
        assert refused.status_code == 400 and error_of(refused.text, "request-label") == ""
        assert 'value="Photos"' in refused.text and 'value="5"' in refused.text
        assert "the most this server takes" in error_of(refused.text, "request-max-mib")

        # Datastar: the form back with its errors; then made, the link in this answer.
        patched = await client.post("/requests", content=form(label=""), headers=DATASTAR)
        assert patched.status_code == 200 and "must not be empty" in patched.text
        made = await client.post("/requests", content=form(label="Trip"), headers=DATASTAR)
        assert made.status_code == 200 and LINK.search(made.text)
        assert 'id="requests"' in made.text and "Trip" in made.text


async def test_requests_are_closed_and_uploads_cancelled_by_plain_forms(config):
    _, token = await add_account(config, "owner")
    async with fresh_client(config, headers=bearer(token)) as client:
        made = (await client.post("/api/requests", json={"label": "In"})).json()["request"]
        started = await client.post(f"{made['url']}/tus", headers=TUS_CREATE)
        upload_id = started.headers.get("location").rsplit("/", 1)[-1]
        page = await client.get("/requests")
        assert f'action="/requests/{made["id"]}/uploads/{upload_id}/cancel"' in page.text
        assert f'action="/requests/{made["id"]}/close"' in page.text

        cancel = f"/requests/{made['id']}/uploads/{upload_id}/cancel"
        cancelled = await client.post(cancel, headers=HTML)
        assert cancelled.status_code == 303
        assert cancelled.headers.get("location") == "/requests?done=cancelled"
        assert (
            "The unfinished upload is cancelled."
            in (await client.get("/requests?done=cancelled")).text
        )
        again = await client.post(cancel, headers=HTML)
        assert again.status_code == 404 and "not unfinished" in again.text

        closed = await client.post(f"/requests/{made['id']}/close", headers=HTML)
        assert closed.status_code == 303
        assert closed.headers.get("location") == "/requests?done=closed"
        assert (await client.get(made["url"])).status_code == 410
        again = await client.post(f"/requests/{made['id']}/close", headers=HTML)
        assert again.status_code == 404 and "not open" in again.text

        other = (await client.post("/api/requests", json={"label": "B"})).json()["request"]
        patched = await client.post(f"/requests/{other['id']}/close", headers=DATASTAR)
        assert patched.status_code == 200 and "The request is closed" in patched.text


async def test_another_accounts_request_cannot_be_closed_or_its_uploads_cancelled(config):
    _, token = await add_account(config, "owner")
    _, other = await add_account(config, "other")
    async with fresh_client(config) as client:
        made = await client.post("/api/requests", json={"label": "Mine"}, headers=bearer(token))
        request = made.json()["request"]
        started = await client.post(f"{request['url']}/tus", headers=TUS_CREATE)
        upload_id = started.headers.get("location").rsplit("/", 1)[-1]
        theirs = {**HTML, **bearer(other)}
        cancel = f"/requests/{request['id']}/uploads/{upload_id}/cancel"
        assert (await client.post(cancel, headers=theirs)).status_code == 404
        close = f"/requests/{request['id']}/close"
        assert (await client.post(close, headers=theirs)).status_code == 404
        listed = (await client.get("/api/requests", headers=bearer(token))).json()["requests"]
        assert [len(r["uploads"]) for r in listed] == [1]
        assert (await client.get(request["url"])).status_code == 200
