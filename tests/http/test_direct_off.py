"""Where direct uploads are off (local storage here), their routes answer 409 in
words with where to upload instead, after telling callers apart as every route does
(no credentials 401, a wrong link 404); nothing is reserved or stored."""

from tests.support.fixtures import unfinished_resumable

from app.config import Config


async def test_local_storage_answers_409_with_the_tus_endpoint(client, anonymous, config: Config):
    calls = [
        ("POST", "/api/uploads/direct", {"name": "a.bin", "size": 10}),
        ("GET", "/api/uploads/direct/" + "A" * 32, None),
        ("POST", "/api/uploads/direct/" + "A" * 32 + "/complete", {"parts": []}),
        ("DELETE", "/api/uploads/direct/" + "A" * 32, None),
    ]
    for method, url, payload in calls:
        r = await client.request(method, url, json=payload)
        assert r.status_code == 409, (url, r.text)
        assert r.json()["use"] == "/tus/"
        assert "direct uploads are off" in r.json()["error"]
        assert (await anonymous.request(method, url, json=payload)).status_code == 401
    made = await client.post("/api/requests", json={"label": "photos"})
    link = made.json()["request"]["url"]
    token = link.rsplit("/", 1)[-1]
    r = await anonymous.post(f"{link}/uploads/direct", json={"name": "a.bin", "size": 10})
    assert r.status_code == 409, r.text
    assert r.json()["use"] == f"/r/{token}/tus/"
    r = await anonymous.post("/r/" + "B" * 32 + "/uploads/direct", json={"name": "a", "size": 1})
    assert r.status_code == 404, r.text
    assert (await client.get("/api/files")).json()["files"] == []
    assert await unfinished_resumable(config) == 0
