from stario import h
from stario.markup import HtmlElement

from app.common.shell import PageAssets, page
from app.features.files.data import FileRow
from app.features.files.urls import FILE
from app.ingest.pipeline import human_bytes


def render(assets: PageAssets, files: list[FileRow]) -> HtmlElement:
    return page(
        assets,
        "Stowage",
        h.Main(
            {"id": "home"},
            h.H1("Stowage"),
            h.P(
                "Upload with ",
                h.Code("curl -T FILE http://HOST/uploads/"),
                "; every file below downloads byte for byte.",
            ),
            h.Ul(
                {"id": "files"},
                *[
                    h.Li(
                        h.A({"href": FILE.href(row.id)}, row.name),
                        f" {human_bytes(row.size)}, {row.mime}",
                    )
                    for row in files
                ],
            )
            if files
            else h.P({"id": "files"}, "No files yet."),
        ),
    )
