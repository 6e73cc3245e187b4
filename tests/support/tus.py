"""tus 1.0 requests through TestClient: creating, appending, reading an offset."""

import base64

TUS = {"tus-resumable": "1.0.0"}


OCTETS = {**TUS, "content-type": "application/offset+octet-stream"}


async def create(client, length: int | None, name: str = "notes.txt", **headers) -> str:
    sent = {**TUS, "upload-metadata": metadata(filename=name, filetype="text/plain"), **headers}
    if length is None:
        sent["upload-defer-length"] = "1"
    else:
        sent["upload-length"] = str(length)
    answer = await client.post("/tus/", headers=sent)
    assert answer.status_code == 201, answer.text
    location = answer.headers.get("location")
    assert location.startswith("/tus/") and len(location) == len("/tus/") + 32
    return location


async def patch(client, url: str, offset: int, body: bytes, **headers):
    return await client.request(
        "PATCH", url, content=body, headers={**OCTETS, "upload-offset": str(offset), **headers}
    )


async def offset_of(client, url: str) -> int:
    answer = await client.request("HEAD", url, headers=TUS)
    assert answer.status_code == 200, answer.status_code
    assert answer.headers.get("cache-control") == "no-store"
    return int(answer.headers.get("upload-offset"))


async def listed(client) -> list[dict]:
    return (await client.get("/api/files")).json()["files"]


def metadata(**fields: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in fields.items())
