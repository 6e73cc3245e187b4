"""`stowage users ...` and `stowage tokens ...`: accounts from the command line.

They open the same catalog as `serve` (SQLite in WAL mode takes a second writer
while the server runs) and use the same queries. Bad input is one line on stderr
and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence

from stario import JsonValue

from app.accounts.admin import log_action
from app.accounts.admin import parse_quota as parse_quota_words
from app.accounts.passwords import WeakPassword, check_strength, hash_password
from app.accounts.store import (
    Account,
    AccountError,
    QuotaKind,
    TokenInfo,
    account_by_name,
    check_name,
    create_account,
    create_token,
    list_accounts,
    list_tokens,
    remove_account,
    revoke_token,
    set_password,
    set_quota,
)
from app.catalog.open import CatalogMismatch, CatalogTooNew, open_catalog
from app.catalog.protocol import CatalogUnavailable, Database
from app.cli.storage import add_storage_flags
from app.common.units import human_bytes
from app.config import SIZE_FORMS, Config
from app.storage.backends import open_store


class CommandError(Exception):
    """Bad input; the message is the one line the person sees."""


def add_account_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], data_dir_help: str
) -> None:
    def with_data_dir(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument("--data-dir", dest="data_dir", metavar="DIR", help=data_dir_help)
        return add_storage_flags(parser)

    users = commands.add_parser("users", help="manage accounts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = with_data_dir(
        users.add_parser(
            "add",
            help="create an account (password from the terminal, or stdin's first line)",
        )
    )
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="may manage accounts")
    add.add_argument(
        "--quota", metavar="SIZE", help=f"what it may store: {SIZE_FORMS}; or none, or default"
    )
    users_list = with_data_dir(
        users.add_parser("list", help="every account with its usage, under a header line")
    )
    add_json_flag(users_list)
    passwd = with_data_dir(
        users.add_parser("passwd", help="set a new password; ends the account's sessions")
    )
    passwd.add_argument("name")
    quota = with_data_dir(
        users.add_parser(
            "quota",
            help="set the quota: SIZE (10GiB, 500MB), none, or default",
            description=f"Set an account's quota. SIZE is {SIZE_FORMS}.",
        )
    )
    quota.add_argument("name")
    quota.add_argument("bytes", metavar="SIZE|none|default")
    remove = with_data_dir(users.add_parser("remove", help="remove an account"))
    remove.add_argument("name")
    remove.add_argument("--delete-files", action="store_true", help="also delete the files it owns")

    tokens = commands.add_parser("tokens", help="manage API tokens").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    token_add = with_data_dir(
        tokens.add_parser("add", help="create a token; prints it alone (shown once)")
    )
    token_add.add_argument("name")
    token_add.add_argument("--label", default="", help="what the token is for")
    token_list = with_data_dir(
        tokens.add_parser("list", help="an account's tokens under a header line, id first")
    )
    token_list.add_argument("name")
    add_json_flag(token_list)
    revoke = with_data_dir(tokens.add_parser("revoke", help="revoke a token by its id"))
    revoke.add_argument("id")


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list of objects instead (for scripts; keys in docs/accounts.md)",
    )


def print_table(rows: Sequence[tuple[str, ...]]) -> None:
    """A header row and one row per item, columns aligned (two spaces between)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def print_json(items: list[dict[str, JsonValue]]) -> None:
    """The whole list as one JSON document on stdout, and nothing else there."""
    print(json.dumps(items, indent=2, ensure_ascii=False))


def read_password(prompt_twice: bool = True) -> str:
    """Twice on a terminal; otherwise the first line of stdin, for scripts."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if prompt_twice and getpass.getpass("Password again: ") != password:
            raise CommandError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        return check_strength(password)
    except WeakPassword as exc:
        raise CommandError(str(exc)) from None


def parse_quota(text: str, flag: str | None = None) -> tuple[QuotaKind, int | None]:
    """The same words as the Admin screen's quota field (app/accounts/admin.py); the
    error names the flag the value came with, if any."""
    try:
        return parse_quota_words(text)
    except AccountError as exc:
        raise CommandError(f"{flag}: {exc}" if flag else str(exc)) from None


async def _account(db: Database, name: str) -> Account:
    account = await account_by_name(db, name)
    if account is None:
        raise CommandError(f"no account named {name!r}")
    return account


def _quota_text(account: Account, default: int | None) -> str:
    quota = account.quota(default)
    text = "none" if quota is None else human_bytes(quota)
    return f"{text} (default)" if account.quota_kind == "default" else text


async def _logged(db: Database, action: str, target: str, detail: str) -> None:
    """In the admin log as the web's admin actions are (app/accounts/admin.py), by
    "the command line". A running server's Admin screen shows it on its next repaint."""
    await log_action(db, None, action, target, detail, time.time())


async def _users_add(db: Database, args: dict, config: Config) -> None:
    kind, quota = parse_quota(args["quota"], "--quota") if args["quota"] else ("default", None)
    try:
        check_name(args["name"])
    except AccountError as exc:
        raise CommandError(str(exc)) from None
    if await account_by_name(db, args["name"]) is not None:
        raise CommandError(f"an account named {args['name']!r} already exists")
    password = read_password()
    try:
        await create_account(
            db,
            args["name"],
            await asyncio.to_thread(hash_password, password),
            admin=args["admin"],
            quota_kind=kind,
            quota_bytes=quota,
        )
    except AccountError as exc:
        raise CommandError(str(exc)) from None
    detail = ("admin; " if args["admin"] else "") + f"quota {args['quota'] or 'default'}"
    await _logged(db, "created account", args["name"], detail)
    print(f"added {args['name']}{' (admin)' if args['admin'] else ''}")


def account_json(account: Account, default_quota: int | None) -> dict[str, JsonValue]:
    """`users list --json`: one account. `quota_bytes` is what it may store now (its
    own quota, or the server's default when `quota_kind` is "default"); null is none."""
    return {
        "id": account.id,
        "name": account.name,
        "is_admin": account.is_admin,
        "quota_kind": account.quota_kind,
        "quota_bytes": account.quota(default_quota),
        "used_bytes": account.used_bytes,
        "file_count": account.file_count,
        "created_at": account.created_at,
    }


async def _users_list(db: Database, args: dict, config: Config) -> None:
    accounts = await list_accounts(db)
    if args["json"]:
        print_json([account_json(a, config.default_quota) for a in accounts])
        return
    rows = [("NAME", "ADMIN", "QUOTA", "USED", "FILES", "CREATED")]
    for a in accounts:
        rows.append(
            (
                a.name,
                "yes" if a.is_admin else "no",
                _quota_text(a, config.default_quota),
                human_bytes(a.used_bytes),
                str(a.file_count),
                a.created_at,
            )
        )
    print_table(rows)


async def _users_passwd(db: Database, args: dict, config: Config) -> None:
    account = await _account(db, args["name"])
    password = read_password()
    await set_password(db, account.id, await asyncio.to_thread(hash_password, password))
    await _logged(db, "set password", account.name, "its sessions ended")
    print(f"new password for {account.name}; its sessions have ended")


async def _users_quota(db: Database, args: dict, config: Config) -> None:
    account = await _account(db, args["name"])
    kind, quota = parse_quota(args["bytes"])
    await set_quota(db, account.id, kind, quota)
    updated = await _account(db, account.name)
    await _logged(db, "set quota", account.name, _quota_text(updated, config.default_quota))
    print(f"quota of {account.name}: {_quota_text(updated, config.default_quota)}")


async def _users_remove(db: Database, args: dict, config: Config) -> None:
    account = await _account(db, args["name"])
    try:
        file_ids = await remove_account(db, account.id, delete_files=args["delete_files"])
    except AccountError as exc:
        raise CommandError(str(exc)) from None
    await _logged(db, "removed account", account.name,
                  f"and {len(file_ids)} file(s)" if file_ids else "")  # fmt: skip
    if file_ids:
        store = await open_store(config)
        try:
            await store.remove(file_ids)
        finally:
            await store.aclose()
    print(f"removed {account.name}" + (f" and {len(file_ids)} file(s)" if file_ids else ""))


async def _tokens_add(db: Database, args: dict, config: Config) -> None:
    account = await _account(db, args["name"])
    try:
        _, secret = await create_token(db, account.id, args["label"])
    except AccountError as exc:
        raise CommandError(str(exc)) from None
    print(secret)


def token_json(token: TokenInfo) -> dict[str, JsonValue]:
    """`tokens list --json`: one token, keyed as GET /api/tokens keys it
    (app/features/tokens/data.py; the commands never load the web app, so not from there)."""
    return {
        "id": token.id,
        "label": token.label,
        "created_at": token.created_at,
        "last_used_at": token.last_used_at,
    }


async def _tokens_list(db: Database, args: dict, config: Config) -> None:
    account = await _account(db, args["name"])
    tokens = await list_tokens(db, account.id)
    if args["json"]:
        # The shape GET /api/tokens gives each token, so a script reads both alike.
        print_json([token_json(token) for token in tokens])
        return
    # The header as `users list` has one: a script skips one line, then reads ids.
    rows = [("ID", "CREATED", "LAST_USED", "LABEL")]
    for token in tokens:
        rows.append((token.id, token.created_at, token.last_used_at or "never", token.label or "-"))
    print_table(rows)


async def _tokens_revoke(db: Database, args: dict, config: Config) -> None:
    if not await revoke_token(db, args["id"]):
        raise CommandError(f"no token with id {args['id']!r}")
    print(f"revoked {args['id']}")


type Command = Callable[[Database, dict, Config], Awaitable[None]]

COMMANDS: dict[tuple[str, str], Command] = {
    ("users", "add"): _users_add,
    ("users", "list"): _users_list,
    ("users", "passwd"): _users_passwd,
    ("users", "quota"): _users_quota,
    ("users", "remove"): _users_remove,
    ("tokens", "add"): _tokens_add,
    ("tokens", "list"): _tokens_list,
    ("tokens", "revoke"): _tokens_revoke,
}


def run_account_command(command: str, args: dict, config: Config) -> int:
    """Run one `users`/`tokens` command; 0 on success, 2 with one line on bad input."""
    action = COMMANDS[(command, args.pop("action"))]

    async def run() -> None:
        db = await open_catalog(config)
        try:
            await action(db, args, config)
        finally:
            await db.close()

    try:
        asyncio.run(run())
    except BrokenPipeError:
        # The reader stopped early (`| head`): no traceback, and none at exit either,
        # when Python flushes stdout again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except CommandError as exc:
        print(f"stowage {command}: error: {exc}", file=sys.stderr)
        return 2
    except CatalogUnavailable as exc:
        print(f"stowage {command}: error: {exc}", file=sys.stderr)
        return 1
    except (CatalogMismatch, CatalogTooNew) as exc:
        print(f"stowage {command}: error: {exc}", file=sys.stderr)
        return 2
    return 0
