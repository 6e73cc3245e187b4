"""Where a command finds the catalog and the blobs, flags every command takes (`serve`
has them among all its settings): `--database`, `--storage` and `--s3-endpoint-url`,
from app/config.py's SETTINGS."""

import argparse

from app.config import SETTINGS

STORAGE_SETTINGS = ("database", "storage", "s3_endpoint_url")


def add_storage_flags(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    for setting in SETTINGS:
        if setting.name in STORAGE_SETTINGS:
            default = setting.default if setting.default is not None else "see text"
            parser.add_argument(
                setting.flag,
                dest=setting.name,
                metavar="STORAGE" if setting.name == "storage" else "URL",
                help=f"{setting.help} [env {setting.env}; default {default}]",
            )
    return parser
