"""The FastAPI / Starlette peers, written the way their documentation shows.

Runs in its own venv (bench/.peers/, pins in requirements.txt) under uvicorn with
its defaults (uvloop + httptools from `uvicorn[standard]`, access log on):

    PEER_WRITE_DIR=D PEER_FILES_DIR=F PEER_DB=db \
        bench/.peers/bin/python -m uvicorn --app-dir bench/peers fastapi_peer:app --port P

- `PUT /stream/{name}`: `request.stream()` chunks to a file with plain `f.write`.
- `POST /form`: `UploadFile` (spooled by python-multipart), then copied to disk.
- `POST /small`: `UploadFile` + sha256 + write + fsync + one SQLite row (WAL,
  synchronous=FULL), the durable small-upload path Stowage is compared with.
- `PUT /small/{name}`: the raw body by `request.stream()` + sha256 + write + fsync + one
  SQLite row: the same durable path for a raw upload, so raw is compared with raw.
- `GET /files/{path}`: Starlette's `FileResponse`.
"""

import hashlib
import os
import shutil
import sqlite3
import threading
import uuid
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request, UploadFile
from starlette.responses import FileResponse

WRITE_DIR = Path(os.environ["PEER_WRITE_DIR"])
FILES_DIR = Path(os.environ["PEER_FILES_DIR"])
DB_PATH = Path(os.environ["PEER_DB"])
COPY_BYTES = 1024 * 1024

app = FastAPI()
_local = threading.local()


def _db() -> sqlite3.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(DB_PATH, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS files"
            " (id TEXT PRIMARY KEY, name TEXT, size INTEGER, sha256 TEXT)"
        )
        _local.conn = conn
    return conn


def _keep(out) -> None:
    out.flush()
    os.fsync(out.fileno())


def _record(file_id: str, name: str, size: int, sha256: str) -> None:
    """One row, durably committed (WAL, synchronous=FULL)."""
    conn = _db()
    with conn:
        conn.execute("INSERT INTO files VALUES (?, ?, ?, ?)", (file_id, name, size, sha256))


@app.put("/stream/{name}", status_code=201)
async def stream(name: str, request: Request) -> dict[str, int]:
    size = 0
    with open(WRITE_DIR / os.path.basename(name), "wb") as f:
        async for chunk in request.stream():
            f.write(chunk)
            size += len(chunk)
    return {"size": size}


@app.post("/form", status_code=201)
def form(file: UploadFile) -> dict[str, str]:
    with open(WRITE_DIR / uuid.uuid4().hex, "wb") as out:
        shutil.copyfileobj(file.file, out, COPY_BYTES)
    return {"name": file.filename or ""}


@app.post("/small", status_code=201)
def small(file: UploadFile) -> dict[str, str | int]:
    file_id = uuid.uuid4().hex
    digest = hashlib.sha256()
    size = 0
    with open(WRITE_DIR / file_id, "wb") as out:
        while chunk := file.file.read(COPY_BYTES):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
        _keep(out)
    _record(file_id, file.filename or "", size, digest.hexdigest())
    return {"id": file_id, "size": size}


@app.put("/small/{name}", status_code=201)
async def small_raw(name: str, request: Request) -> dict[str, str | int]:
    file_id = uuid.uuid4().hex
    digest = hashlib.sha256()
    size = 0
    with open(WRITE_DIR / file_id, "wb") as out:
        async for chunk in request.stream():
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
        _keep(out)
    _record(file_id, os.path.basename(name), size, digest.hexdigest())
    return {"id": file_id, "size": size}


@app.get("/files/{path:path}")
def files(path: str) -> FileResponse:
    target = (FILES_DIR / path).resolve()
    if not target.is_relative_to(FILES_DIR.resolve()) or not target.is_file():
        raise HTTPException(404)
    return FileResponse(target)
