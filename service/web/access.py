"""Which requester may reach which route — one table, first match wins.

``need`` is the least role required; ``None`` leaves the route open (signatures guard the
webhooks; the login page must be reachable to log in). ``wall`` routes also open to a wall
token, which opens nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.accounts.model import Principal, Role


@dataclass(frozen=True)
class Rule:
    path: str  # exact path, or a prefix when it ends with "/" ("/" alone is the home page)
    need: Role | None
    wall: bool = False

    def matches(self, path: str) -> bool:
        if self.path.endswith("/") and self.path != "/":
            return path.startswith(self.path) or path == self.path[:-1]
        return path == self.path


OPEN = "open"
METRICS = "metrics"

RULES: tuple[Rule, ...] = (
    Rule("/healthz", None),
    Rule("/api/v1/openapi.json", None),  # the API's description, not its data
    Rule("/webhooks/", None),
    Rule("/static/", None),
    Rule("/connexion/", None),
    Rule("/deconnexion", None),  # the handler ends a session if there is one
    Rule("/favicon.ico", None),
    Rule("/mur/", Role.VIEWER, wall=True),
    Rule("/api/v1/wall/", Role.VIEWER, wall=True),
    Rule("/api/v1/engagement8", Role.VIEWER),
    Rule("/api/v1/affluence", Role.VIEWER),
    Rule("/api/v1/me", Role.VIEWER),
    Rule("/api/v1/tokens/", Role.VIEWER),  # one's own tokens
    Rule("/api/v1/calls/", Role.QUALITY),
    Rule("/api/v1/callbacks/", Role.VIEWER),  # numbers and marking: quality (handler)
    Rule("/rappels", Role.VIEWER),
    Rule("/api/v1/campaigns/", Role.QUALITY),
    Rule("/api/v1/grids/", Role.QUALITY),
    Rule("/api/v1/digest/", Role.QUALITY),
    Rule("/synthese", Role.QUALITY),
    # Evaluators may be viewers: the handlers check that a call is theirs.
    Rule("/api/v1/mystery-calls/", Role.VIEWER),
    Rule("/campagnes/", Role.QUALITY),
    Rule("/appels-mysteres/", Role.VIEWER),
    Rule("/mes-appels", Role.VIEWER),
    Rule("/api/v1/users/", Role.ADMIN),
    Rule("/api/v1/wall-tokens/", Role.ADMIN),
    Rule("/api/v1/audit/", Role.ADMIN),
    Rule("/api/v1/privacy/", Role.ADMIN),
    Rule("/", Role.VIEWER),
    Rule("/comptes", Role.ADMIN),
)
# Anything else needs the highest role: a route added without a rule is closed, not open.
DEFAULT = Rule("/", Role.ADMIN)


def rule_for(path: str) -> Rule:
    for rule in RULES:
        if rule.matches(path):
            return rule
    return DEFAULT


def allowed(rule: Rule, who: Principal | None) -> bool:
    """Whether ``who`` (None: nobody logged in) may use a route under ``rule``."""
    if rule.need is None:
        return True
    if who is None:
        return False
    if who.kind == "wall":
        return rule.wall
    return who.has(rule.need)
