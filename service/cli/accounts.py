"""``decroche user`` and ``decroche wall-token``: accounts and wall screens' links."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from service.cli.support import UserError, with_config
from service.cli.support import settings_of as _settings
from service.cli.support import with_database as _with_database

if TYPE_CHECKING:
    import asyncpg

    from service.accounts.model import Role

SETUP_LINK_VALIDITY = timedelta(days=3)


def cmd_user(args: argparse.Namespace) -> int:
    """Accounts: add (password prompt or one-time set-up link), list, disable, link."""
    from service.accounts.model import normalise_email, parse_role

    settings = _settings(args)
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    try:
        email = normalise_email(args.email) if getattr(args, "email", None) else ""
        role = parse_role(args.role) if getattr(args, "role", None) else None
    except ValueError as exc:
        raise UserError(str(exc)) from None
    password: str | None = None
    if args.action == "add" and not args.link and sys.stdin.isatty():
        password = _prompt_password(email)

    async def work(pool: Any, _applied: list[Any]) -> str:
        if args.action == "list":
            return await _list_users(pool)
        if args.action == "add":
            assert role is not None
            added = await _add_user(pool, email, role, password, base)
            if added is not None:
                return added
        if args.action == "disable":
            return await _disable_user(pool, email)
        return await _setup_link(pool, email, base, added=args.action == "add")

    print(_with_database(settings, work))
    return 0


def _prompt_password(email: str) -> str:
    """A new password typed twice on the terminal; empty for a set-up link instead."""
    import getpass

    from service.accounts.passwords import check_strength

    password = getpass.getpass(f"Password for {email} (empty: print a set-up link): ")
    if password:
        problem = check_strength(password)
        if problem is not None:
            raise UserError(problem)
        if getpass.getpass("Again: ") != password:
            raise UserError("the two passwords differ")
    return password


async def _list_users(pool: Any) -> str:
    from service.accounts import queries as accounts

    rows = await accounts.list_users(pool)
    return (
        "\n".join(
            f"{r['email']:<40} {r['role']:<8} "
            + ("disabled" if r["disabled_at"] else "active" if r["active"] else "set-up pending")
            for r in rows
        )
        or "no accounts yet: decroche user add EMAIL --role admin"
    )


async def _add_user(
    pool: Any, email: str, role: Role, password: str | None, base: str
) -> str | None:
    """Add the account, with its password when one was typed: then what to print; None when
    it still needs a set-up link."""
    from service.accounts import queries as accounts
    from service.accounts.passwords import hash_password

    try:
        uid = await accounts.add_user(pool, email, role)
    except accounts.AccountError as exc:
        raise UserError(str(exc)) from None
    await accounts.audit(pool, "cli", "user.add", email, {"role": role.value})
    if not password:
        return None
    await accounts.set_password(pool, uid, hash_password(password))
    return f"added {email} ({role.value}); they can log in at {base}/connexion"


async def _existing_user(pool: Any, email: str) -> asyncpg.Record:
    from service.accounts import queries as accounts

    user = await accounts.get_user(pool, email)
    if user is None:
        raise UserError(f"no account for {email}")
    return user


async def _disable_user(pool: Any, email: str) -> str:
    from service.accounts import queries as accounts

    user = await _existing_user(pool, email)
    await accounts.disable_user(pool, user["id"])
    await accounts.audit(pool, "cli", "user.disable", email)
    return f"disabled {email}; their sessions and API tokens are ended"


async def _setup_link(pool: Any, email: str, base: str, *, added: bool) -> str:
    """A new one-time set-up link for the account (``added``: it was just created)."""
    from service.accounts import queries as accounts

    user = await _existing_user(pool, email)
    token = await accounts.new_setup_link_token(pool, user["id"], SETUP_LINK_VALIDITY)
    await accounts.audit(pool, "cli", "user.setup_link", email)
    return (
        f"{'added ' + email + ' (' + user['role'] + '); ' if added else ''}"
        f"one-time set-up link (valid 3 days):\n{base}/connexion/activer?jeton={token}"
    )


def cmd_wall_token(args: argparse.Namespace) -> int:
    """Read-only links for unattended wall screens: create, list, revoke."""
    from service.accounts import queries as accounts

    settings = _settings(args)
    base = settings.public_url or f"http://{settings.host}:{settings.port}"

    async def work(pool: Any, _applied: list[Any]) -> str:
        if args.action == "create":
            tid, token = await accounts.create_token(pool, "wall", None, args.name)
            await accounts.audit(pool, "cli", "wall_token.create", f"token:{tid}")
            return f"wall token {tid} « {args.name} »: {base}/mur?token={token}"
        if args.action == "revoke":
            if not await accounts.revoke_token(pool, args.id, "wall", None):
                raise UserError(f"no live wall token {args.id}")
            await accounts.audit(pool, "cli", "wall_token.revoke", f"token:{args.id}")
            return f"revoked wall token {args.id}"
        rows = await accounts.list_tokens(pool, "wall")
        return (
            "\n".join(
                f"{r['id']:>4}  {r['name']:<30} {r['prefix']}…  "
                + (f"revoked {r['revoked_at']:%Y-%m-%d}" if r["revoked_at"] else "live")
                for r in rows
            )
            or "no wall tokens"
        )

    print(_with_database(settings, work))
    return 0


def add_parser(sub: Any) -> None:
    """Add the user, walls sub-commands."""
    users = sub.add_parser("user", help="accounts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    s = with_config(users.add_parser("add", help="add an account (prompts for a password)"))
    s.add_argument("email")
    s.add_argument("--role", required=True, choices=["admin", "quality", "viewer"])
    s.add_argument(
        "--link", action="store_true", help="print a one-time set-up link instead of prompting"
    )
    s.set_defaults(func=cmd_user)
    s = with_config(users.add_parser("list", help="list the accounts"))
    s.set_defaults(func=cmd_user)
    s = with_config(users.add_parser("disable", help="disable an account, end its sessions"))
    s.add_argument("email")
    s.set_defaults(func=cmd_user)
    s = with_config(users.add_parser("link", help="a new one-time set-up link (lost password)"))
    s.add_argument("email")
    s.set_defaults(func=cmd_user)
    walls = sub.add_parser("wall-token", help="read-only links for wall screens").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    s = with_config(walls.add_parser("create", help="create a wall link"))
    s.add_argument("name", help="which screen, e.g. « Accueil, écran 1 »")
    s.set_defaults(func=cmd_wall_token)
    s = with_config(walls.add_parser("list", help="list wall tokens"))
    s.set_defaults(func=cmd_wall_token)
    s = with_config(walls.add_parser("revoke", help="revoke a wall token"))
    s.add_argument("id", type=int)
    s.set_defaults(func=cmd_wall_token)
