"""Who is asking (a :class:`Principal`) and what each role may do — pure rules.

Roles are ordered: ``admin`` ⊃ ``quality`` ⊃ ``viewer``. A wall token is no role at all: it
opens the wall and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    QUALITY = "quality"
    ADMIN = "admin"


RANK = {Role.VIEWER: 1, Role.QUALITY: 2, Role.ADMIN: 3}

# Deliberately loose: the address is an identifier here, not a mailbox we validate.
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Principal:
    """An authenticated requester."""

    kind: str  # "session", "token", "env" (DECROCHE_ADMIN_TOKEN), "wall"
    role: Role | None  # None for a wall token
    user_id: int | None = None
    email: str | None = None
    token_id: int | None = None
    session_hash: str | None = None

    @property
    def label(self) -> str:
        """How the audit log names this requester."""
        if self.kind == "env":
            return "env-admin"
        if self.kind == "wall":
            return f"wall-token:{self.token_id}"
        who = f"user:{self.user_id} {self.email}"
        return f"{who} (token:{self.token_id})" if self.kind == "token" else who

    def has(self, needed: Role) -> bool:
        return self.role is not None and RANK[self.role] >= RANK[needed]


def normalise_email(email: str) -> str:
    """Lower-cased and trimmed; raises ValueError when it is not an address."""
    e = email.strip().lower()
    if not EMAIL.match(e) or len(e) > 254:
        raise ValueError(f"{email!r} is not an e-mail address")
    return e


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValueError(
            f"unknown role {value!r} (expected one of: {', '.join(r.value for r in Role)})"
        ) from None
