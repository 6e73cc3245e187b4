from stario import App, Context, Writer

from app.access.gate import principal, readable_file
from app.catalog.protocol import Database
from app.common.http import json_error
from app.common.shell import PageAssets
from app.downloads.serve import serve_file
from app.features.files.urls import API_FILES, FILE, FILE_HEAD
from app.features.nav.panel import missing_file
from app.files.query import FileQuery, QueryError, parse_file_query, parse_window
from app.files.store import file_json, list_files
from app.folders.store import folder_paths
from app.storage.store import Store


def file_query(c: Context) -> FileQuery:
    """`?q=&type=&sort=&order=`; QueryError in words for a value it cannot take."""
    get = c.req.query.get
    return parse_file_query(get("q"), get("type"), get("sort"), get("order"))


def show_file_list(db: Database):
    async def handler(c: Context, w: Writer) -> None:
        try:
            limit, offset = parse_window(c.req.query.get("limit"), c.req.query.get("offset"))
            query = file_query(c)
        except QueryError as exc:
            json_error(w, 400, str(exc))
            return
        owner = principal(c).account_id
        rows = await list_files(db, owner, limit, offset, query)
        paths = await folder_paths(db, owner, {row.folder_id for row in rows})
        w.json({"files": [file_json(row, paths.get(row.folder_id, "/")) for row in rows]})

    return handler


def download_file(db: Database, store: Store, assets: PageAssets | None = None):
    """GET and HEAD /files/{id}: the account's own file, served by `serve_file`. A
    file that is gone or another account's: an HTML page for a person's browser, the
    JSON 404 for everything else."""

    async def handler(c: Context, w: Writer) -> None:
        row = await readable_file(c, db)
        if row is None:
            if assets is not None:
                missing_file(assets, c, w)
            else:
                json_error(w, 404, "no such file")
            return
        await serve_file(c, w, store, row)

    return handler


def register_files(app: App, db: Database, store: Store, assets: PageAssets | None = None) -> None:
    app.add(API_FILES, show_file_list(db))
    download = download_file(db, store, assets)
    app.add(FILE, download)
    app.add(FILE_HEAD, download)
