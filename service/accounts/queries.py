"""SQL for users, sessions, tokens, login failures and the audit log."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, TypeAlias

import asyncpg

from service.accounts.credentials import digest, new_token
from service.accounts.model import Principal, Role

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


class AccountError(ValueError):
    """A request about accounts that cannot be done (duplicate, unknown…)."""


async def add_user(conn: Conn, email: str, role: Role) -> int:
    try:
        uid: int = await conn.fetchval(
            "INSERT INTO users (email, role) VALUES ($1, $2) RETURNING id", email, role.value
        )
    except asyncpg.UniqueViolationError:
        raise AccountError(f"an account for {email} already exists") from None
    return uid


async def get_user(conn: Conn, email: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM users WHERE email = $1", email)


async def user_email(conn: Conn, user_id: int) -> str | None:
    """The e-mail address of user ``user_id``; None when there is no such user."""
    email: str | None = await conn.fetchval("SELECT email FROM users WHERE id = $1", user_id)
    return email


async def list_users(conn: Conn) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT id, email, role, disabled_at, created_at, password_hash IS NOT NULL AS active "
            "FROM users ORDER BY email"
        )
    )


async def set_password(conn: Conn, user_id: int, password_hash: str) -> None:
    await conn.execute(
        "UPDATE users SET password_hash = $2, setup_hash = NULL, setup_expires = NULL "
        "WHERE id = $1",
        user_id,
        password_hash,
    )


async def set_role(conn: Conn, user_id: int, role: Role) -> None:
    await conn.execute("UPDATE users SET role = $2 WHERE id = $1", user_id, role.value)


async def disable_user(conn: Conn, user_id: int) -> None:
    """Disable an account and end all it opened: sessions and API tokens."""
    await conn.execute("UPDATE users SET disabled_at = now() WHERE id = $1", user_id)
    await conn.execute("DELETE FROM sessions WHERE user_id = $1", user_id)
    await conn.execute(
        "UPDATE tokens SET revoked_at = now() WHERE user_id = $1 AND kind = 'api' "
        "AND revoked_at IS NULL",
        user_id,
    )


async def new_setup_link_token(conn: Conn, user_id: int, valid: timedelta) -> str:
    token = new_token("setup")
    await conn.execute(
        "UPDATE users SET setup_hash = $2, setup_expires = now() + $3 WHERE id = $1",
        user_id,
        digest(token),
        valid,
    )
    return token


async def user_by_setup_token(conn: Conn, token: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM users WHERE setup_hash = $1 AND setup_expires > now() "
        "AND disabled_at IS NULL",
        digest(token),
    )


# Sessions


async def create_session(conn: Conn, user_id: int, lifetime: timedelta) -> str:
    sid = new_token("session")
    await conn.execute(
        "INSERT INTO sessions (id_hash, user_id, expires_at) VALUES ($1, $2, now() + $3)",
        digest(sid),
        user_id,
        lifetime,
    )
    return sid


async def session_principal(conn: Conn, sid: str) -> Principal | None:
    h = digest(sid)
    row = await conn.fetchrow(
        "SELECT u.id, u.email, u.role FROM sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.id_hash = $1 AND s.expires_at > now() AND u.disabled_at IS NULL",
        h,
    )
    if row is None:
        return None
    return Principal("session", Role(row["role"]), row["id"], row["email"], session_hash=h)


async def delete_session(conn: Conn, session_hash: str) -> None:
    await conn.execute("DELETE FROM sessions WHERE id_hash = $1", session_hash)


# Tokens


async def create_token(conn: Conn, kind: str, user_id: int | None, name: str) -> tuple[int, str]:
    token = new_token(kind)
    tid: int = await conn.fetchval(
        "INSERT INTO tokens (kind, user_id, name, token_hash, prefix) "
        "VALUES ($1, $2, $3, $4, $5) RETURNING id",
        kind,
        user_id,
        name,
        digest(token),
        token[: len(token) - 38],  # the prefix and the first few random characters
    )
    return tid, token


async def token_principal(conn: Conn, token: str) -> Principal | None:
    row = await conn.fetchrow(
        """
        UPDATE tokens t SET last_used_at = now()
        FROM tokens t0 LEFT JOIN users u ON u.id = t0.user_id
        WHERE t.id = t0.id AND t0.token_hash = $1 AND t0.revoked_at IS NULL
          AND (t0.kind = 'wall' OR u.disabled_at IS NULL)
        RETURNING t.id, t.kind, u.id AS user_id, u.email, u.role
        """,
        digest(token),
    )
    if row is None:
        return None
    if row["kind"] == "wall":
        return Principal("wall", None, token_id=row["id"])
    return Principal("token", Role(row["role"]), row["user_id"], row["email"], row["id"])


async def list_tokens(conn: Conn, kind: str, user_id: int | None = None) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT t.id, t.name, t.prefix, t.created_at, t.last_used_at, t.revoked_at, "
            "u.email AS owner FROM tokens t LEFT JOIN users u ON u.id = t.user_id "
            "WHERE t.kind = $1 AND ($2::bigint IS NULL OR t.user_id = $2) ORDER BY t.id",
            kind,
            user_id,
        )
    )


async def revoke_token(conn: Conn, token_id: int, kind: str, user_id: int | None) -> bool:
    """Revoke a token (of ``user_id`` when given); False when there is no such live token."""
    done = await conn.fetchval(
        "UPDATE tokens SET revoked_at = now() WHERE id = $1 AND kind = $2 "
        "AND ($3::bigint IS NULL OR user_id = $3) AND revoked_at IS NULL RETURNING id",
        token_id,
        kind,
        user_id,
    )
    return done is not None


_ALIVE = {
    "session": "SELECT EXISTS (SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id "
    "WHERE s.id_hash = $1 AND s.expires_at > now() AND u.disabled_at IS NULL)",
    "token": "SELECT EXISTS (SELECT 1 FROM tokens t JOIN users u ON u.id = t.user_id "
    "WHERE t.id = $1::bigint AND t.revoked_at IS NULL AND u.disabled_at IS NULL)",
    "wall": "SELECT EXISTS (SELECT 1 FROM tokens WHERE id = $1::bigint AND kind = 'wall' "
    "AND revoked_at IS NULL)",
}


async def principal_alive(conn: Conn, who: Principal) -> bool:
    """Whether the credential ``who`` was let in with still holds: the session not ended or
    expired, the token not revoked, its user not disabled. The environment's token always
    does (it changes with a restart)."""
    sql = _ALIVE.get(who.kind)
    if sql is None:
        return who.kind == "env"
    key = who.session_hash if who.kind == "session" else who.token_id
    alive: bool = await conn.fetchval(sql, key)
    return alive


# Login throttling. An attempt is recorded before its password is checked (and forgotten when
# it succeeds), counted and recorded under transaction-level advisory locks of its account
# and of its address: concurrent attempts, on any instance, are counted one after the other,
# so no more than the limit ever reach the password check within the window.

# The two classes of lock keys (pg_advisory_xact_lock(class, hashtext(value))); every
# transaction takes the account's, then the address's, so two never wait on each other.
ACCOUNT_LOCK = 24_001
ADDRESS_LOCK = 24_002


async def recent_failures(conn: Conn, email: str, address: str, since: datetime) -> tuple[int, int]:
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE email = $1) AS by_email, "
        "count(*) FILTER (WHERE address = $2) AS by_address "
        "FROM login_failures WHERE at > $3 AND (email = $1 OR address = $2)",
        email,
        address,
        since,
    )
    assert row is not None
    return row["by_email"], row["by_address"]


async def reserve_attempt(
    pool: asyncpg.Pool, email: str, address: str, since: datetime, limits: tuple[int, int]
) -> int | None:
    """Record an attempt for ``email`` from ``address`` unless either already made
    ``limits`` (per account, per address) since ``since``: the attempt's id, or None when
    throttled."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", ACCOUNT_LOCK, email)
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", ADDRESS_LOCK, address)
        by_email, by_address = await recent_failures(conn, email, address, since)
        if by_email >= limits[0] or by_address >= limits[1]:
            return None
        attempt: int = await conn.fetchval(
            "INSERT INTO login_failures (email, address) VALUES ($1, $2) RETURNING id",
            email,
            address,
        )
        return attempt


async def forget_attempt(conn: Conn, attempt: int) -> None:
    """An attempt turned away before its password was checked does not count."""
    await conn.execute("DELETE FROM login_failures WHERE id = $1", attempt)


async def clear_failures(conn: Conn, email: str) -> None:
    await conn.execute("DELETE FROM login_failures WHERE email = $1", email)


# Audit


async def audit(
    conn: Conn,
    actor: str,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    address: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor, action, target, detail, address) "
        "VALUES ($1, $2, $3, $4::json, $5)",
        actor,
        action,
        target,
        json.dumps(detail, ensure_ascii=False) if detail is not None else None,
        address,
    )


async def audit_entries(conn: Conn, limit: int = 200) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT id, at, actor, action, target, detail::text AS detail, address "
            "FROM audit_log ORDER BY id DESC LIMIT $1",
            limit,
        )
    )
