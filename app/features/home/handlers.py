from stario import App, Context, Writer

from app.common.shell import PageAssets
from app.db import Database
from app.features.files.data import list_files
from app.features.home.urls import HOME
from app.features.home.views import render


def show_home(db: Database, assets: PageAssets):
    async def handler(c: Context, w: Writer) -> None:
        w.html(render(assets, await list_files(db, limit=200)))

    return handler


def register_home(app: App, db: Database, assets: PageAssets) -> None:
    app.add(HOME, show_home(db, assets))
