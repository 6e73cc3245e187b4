"""`stowage serve` (flags and STOWAGE_* variables onto Stario's server config), the
account commands `stowage users ...` and `stowage tokens ...` (app/cli/accounts.py),
and `stowage check` and `stowage backup` (app/cli/ops.py).

Only `serve` imports the web app (app/main.py), and only once it is chosen."""

import argparse
import math
import sys
from contextlib import AbstractContextManager
from typing import cast

import uvloop
from stario import ServerConfig
from stario.http.config import RequestPolicy
from stario.http.server import Server
from stario.telemetry.core import Tracer

from app.bundle import BundleError, ensure_datastar
from app.catalog.open import (
    CatalogMismatch,
    CatalogTooNew,
    check_catalog_matches,
    check_schema_version,
)
from app.catalog.protocol import CatalogUnavailable
from app.cli.accounts import add_account_commands, run_account_command
from app.cli.ops import add_ops_commands, run_ops_command
from app.cli.storage import STORAGE_SETTINGS
from app.config import SETTINGS, SIZE_FORMS, Config, ConfigError, uv_executable
from app.ops.lock import DataDirBusy, DataDirLock
from app.resumable.limits import upload_limit_field
from app.server.limits import connections_for, per_address_for, raise_open_file_limit
from app.server.peers import ConnectionLimits, ProtocolFactory
from app.server.rate import RateFloor


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stowage", description="Stowage: upload, keep, share and download files."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve_parser = commands.add_parser(
        "serve",
        help="run the web app",
        description="Run the Stowage web app. Every flag can also be set through the "
        "environment variable named beside it; a flag wins over its variable. "
        f"Every SIZE is {SIZE_FORMS}.",
    )
    for setting in SETTINGS:
        default = setting.default if setting.default is not None else "see text"
        serve_parser.add_argument(
            setting.flag,
            dest=setting.name,
            metavar="SIZE" if setting.is_size else setting.name.split("_")[-1].upper(),
            help=f"{setting.help} [env {setting.env}; default {default}]",
        )
    data_dir = next(setting for setting in SETTINGS if setting.name == "data_dir")
    data_dir_help = f"{data_dir.help} [env {data_dir.env}; default {data_dir.default}]"
    add_account_commands(commands, data_dir_help)
    add_ops_commands(commands, data_dir_help)
    return parser


def make_tracer(log: str) -> Tracer:
    if log == "tty":
        from stario.telemetry.tty import TTYTracer

        return cast(Tracer, TTYTracer())
    if log == "off":
        from stario.telemetry.noop import NoOpTracer

        return cast(Tracer, NoOpTracer())
    from stario.telemetry.json import JsonTracer

    return cast(Tracer, JsonTracer())


def server_config(config: Config, *, max_connections: int | None = None) -> ServerConfig:
    """Stario's settings; `max_connections` is the cap when `--max-connections` is unset."""
    return ServerConfig(
        host=config.host,
        port=config.port,
        max_connections=config.max_connections or max_connections,
        graceful_shutdown_timeout=config.shutdown_timeout,
        requests=RequestPolicy(
            max_body_bytes=config.max_request_body_bytes,
            max_header_bytes=config.max_request_header_bytes,
            body_timeout=config.body_timeout,
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = vars(parser.parse_args(argv))
    command = args.pop("command")
    if command != "serve":
        try:
            given = {"data_dir": args.pop("data_dir")}
            given |= {name: args.pop(name, None) for name in STORAGE_SETTINGS}
            config = Config.load(given)
        except ConfigError as exc:
            parser.exit(2, f"stowage: error: {exc}\n")
        if command in ("check", "backup"):
            return run_ops_command(command, args, config)
        return run_account_command(command, args, config)
    try:
        config = Config.load(args, stdout_is_tty=sys.stdout.isatty())
    except ConfigError as exc:
        parser.exit(2, f"stowage: error: {exc}\n")
    try:
        check_catalog_matches(config)
        check_schema_version(config)
    except (CatalogMismatch, CatalogTooNew) as exc:
        parser.exit(2, f"stowage: error: {exc}\n")
    except CatalogUnavailable:
        pass  # said once the server opens the catalog, as before
    try:
        # Held until the process ends; taken before anything else, so a second server
        # on the same dir stops here, before it binds a port.
        data_dir_lock = DataDirLock.acquire(config.data_dir)
    except DataDirBusy as exc:
        parser.exit(2, f"stowage: error: {exc}; stop it, or choose another --data-dir\n")
    try:
        if ensure_datastar(uv_executable()):
            print("stowage: fetched and verified the Datastar bundle", file=sys.stderr)
    except BundleError as exc:
        print(
            f"stowage: warning: {exc}; the API works, the page will lack Datastar",
            file=sys.stderr,
        )
    open_files, hard_limit = raise_open_file_limit()
    max_connections = config.max_connections or connections_for(open_files)
    per_address = config.max_connections_per_address
    if per_address is None:
        per_address = per_address_for(max_connections)
    print(
        f"stowage: serving http://{config.host}:{config.port}/ "
        f"(data in {config.data_dir.resolve()})\n"
        f"stowage: open-file limit {open_files} (hard limit {hard_limit}); "
        f"at most {max_connections} connections, "
        f"{per_address or 'any number'} from one address",
        file=sys.stderr,
        flush=True,
    )
    # What `OPTIONS *` tells of the IETF resumable-upload draft's limits.
    upload_limit = upload_limit_field(
        config.max_file_bytes, config.max_request_body_bytes, math.floor(config.upload_expiry)
    )
    limits = ConnectionLimits(
        per_address or None, RateFloor.of(config), upload_limit=upload_limit.encode()
    )
    protocols = ProtocolFactory(limits)
    tracer = make_tracer(config.log)
    # The web app, imported by `serve` alone: the other commands never load it.
    from app.main import make_bootstrap

    with cast(AbstractContextManager[Tracer], tracer):
        server = Server(
            make_bootstrap(config, protocols=protocols),
            tracer,
            config=server_config(config, max_connections=max_connections),
            make_protocol=protocols,
        )
        uvloop.run(server.serve())
    data_dir_lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
