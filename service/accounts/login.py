"""``/connexion`` (log in), ``/deconnexion`` (log out), ``/connexion/activer`` (set a password
from a one-time set-up link). French pages, plain HTML forms, no script.

The login form is protected against CSRF by a signed cookie and a token derived from it
(there is no session yet); logging out needs the session's own token. Failed attempts are
throttled per account and per address (:data:`MAX_PER_ACCOUNT`, :data:`MAX_PER_ADDRESS`
within :data:`WINDOW`), counted in the database so every instance sees them: an attempt is
recorded before its password is checked, under locks of its account and its address, so
concurrent attempts cannot slip past the count (``queries.reserve_attempt``). Password
checks run a few at a time (``hashing.HashGate``); beyond, a login is turned away with a
503 at once. The page to go to afterwards is kept only if it is of this site
(``redirects.local_target``).
"""

from __future__ import annotations

import contextlib
import secrets
from datetime import UTC, datetime, timedelta
from html import escape
from string import Template

import asyncpg
from aiohttp import web

from service.accounts import queries as accounts
from service.accounts.hashing import Busy, HashGate
from service.accounts.model import normalise_email
from service.accounts.passwords import (
    check_strength,
    hash_password,
    needs_rehash,
    verify_password,
)
from service.accounts.redirects import local_target
from service.keys import DB_POOL, METRICS, SETTINGS
from service.web.cookies import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    csrf_ok,
    csrf_token,
    set_cookie,
    sign,
    unsign,
)
from service.web.pages import TEMPLATES, reference_html

SESSION_LIFETIME = timedelta(hours=12)
WINDOW = timedelta(minutes=15)
MAX_PER_ACCOUNT = 5
MAX_PER_ADDRESS = 20
FORM_LIMIT = 16 * 1024  # a login form is a few hundred bytes
BUSY_RETRY_S = 5  # Retry-After when too many password checks are already waiting
HASHING: web.AppKey[HashGate] = web.AppKey("hashing", HashGate)

_PAGE = Template((TEMPLATES / "login.html").read_text("utf-8"))
_LOGIN_FIELDS = (
    '<label>Adresse électronique <input type="email" name="email" value="$email" '
    'autocomplete="username" required autofocus></label>'
    '<label>Mot de passe <input type="password" name="password" '
    'autocomplete="current-password" required></label>'
)
_SETUP_FIELDS = (
    '<input type="hidden" name="jeton" value="$jeton">'
    '<label>Nouveau mot de passe <input type="password" name="password" '
    'autocomplete="new-password" minlength="12" required autofocus></label>'
    '<label>Confirmation <input type="password" name="confirm" autocomplete="new-password" '
    "required></label>"
)


def _secure(request: web.Request) -> bool:
    public = request.app[SETTINGS].public_url
    return (public or "").startswith("https://") or request.secure


def _safe_next(value: str | None) -> str:
    """Only a path of this site: never an open redirect to another one."""
    return local_target(value)


def _render(
    *,
    title: str,
    action: str,
    csrf: str,
    suite: str,
    fields: str,
    button: str,
    message: str = "",
    error: bool = False,
    status: int = 200,
) -> web.Response:
    note = ""
    if message:
        note = f'<p class="{"error" if error else "note"}" role="alert">{escape(message)}</p>'
        if error:  # the id the user can quote when they report it
            note += reference_html()
    html = _PAGE.substitute(
        title=escape(title),
        action=escape(action),
        csrf=escape(csrf),
        suite=escape(suite),
        fields=fields,
        button=escape(button),
        message=note,
    )
    resp = web.Response(text=html, content_type="text/html", charset="utf-8", status=status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _login_page(
    request: web.Request,
    *,
    email: str = "",
    suite: str = "/",
    message: str = "",
    error: bool = False,
    status: int = 200,
) -> web.Response:
    secret = request.app[SETTINGS].secret_key
    raw = request.cookies.get(LOGIN_CSRF_COOKIE)
    nonce = unsign(secret, raw) if raw else None
    if nonce is None:
        nonce = secrets.token_urlsafe(16)
    resp = _render(
        title="Connexion",
        action="/connexion",
        csrf=csrf_token(secret, nonce),
        suite=suite,
        fields=Template(_LOGIN_FIELDS).substitute(email=escape(email)),
        button="Se connecter",
        message=message,
        error=error,
        status=status,
    )
    set_cookie(resp, LOGIN_CSRF_COOKIE, sign(secret, nonce), max_age=3600, secure=_secure(request))
    return resp


async def _form(request: web.Request) -> dict[str, str]:
    if request.content_length is not None and request.content_length > FORM_LIMIT:
        request.app[METRICS].refuse("too_large")
        raise web.HTTPRequestEntityTooLarge(max_size=FORM_LIMIT, actual_size=request.content_length)
    if request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        request.app[METRICS].refuse("unreadable_body")
        raise web.HTTPBadRequest(reason="expected a form (application/x-www-form-urlencoded)")
    data = await request.post()
    return {k: v for k, v in data.items() if isinstance(v, str)}


async def login_get(request: web.Request) -> web.Response:
    message = "Vous êtes déconnecté." if "sortie" in request.query else ""
    return _login_page(request, suite=_safe_next(request.query.get("suite")), message=message)


def _address(request: web.Request) -> str:
    return request.remote or "unknown"


async def login_post(request: web.Request) -> web.StreamResponse:
    """Check the form, the throttle and the password; on success, open a session and go on
    to the page asked for."""
    form = await _form(request)
    suite = _safe_next(form.get("suite"))
    if not _login_csrf_ok(request, form):
        request.app[METRICS].refuse("csrf")
        return _login_page(
            request,
            suite=suite,
            message="Le formulaire a expiré ; merci de recommencer.",
            error=True,
            status=403,
        )
    typed = form.get("email", "")
    password = form.get("password", "")
    try:
        email = normalise_email(typed)
    except ValueError:
        return _login_refused(request, typed, suite, "Adresse électronique invalide.", 400)
    outcome = await _attempt(request, email, password)
    if isinstance(outcome, str):
        return _login_refused(request, typed, suite, *_REFUSALS[outcome])
    await _logged_in(request, outcome, email, password)
    raise await _open_session(request, outcome, email, _address(request), suite)


_REFUSALS = {
    "busy": ("Trop de connexions en cours : réessayez dans quelques secondes.", 503),
    "throttled": (f"Trop de tentatives : réessayez dans {WINDOW.seconds // 60} minutes.", 429),
    "failed": ("Adresse ou mot de passe incorrect.", 401),
}


async def _attempt(request: web.Request, email: str, password: str) -> asyncpg.Record | str:
    """The account when ``password`` opens it; otherwise why not (a key of ``_REFUSALS``).

    The attempt is counted before its password is checked: at most :data:`MAX_PER_ACCOUNT`
    per account and :data:`MAX_PER_ADDRESS` per address reach Argon2 within :data:`WINDOW`,
    however many arrive at once and at whichever instance. One turned away because too many
    checks wait already is not counted."""
    pool, gate, metrics = request.app[DB_POOL], request.app[HASHING], request.app[METRICS]
    if gate.full:
        metrics.refuse("login_busy")
        return "busy"
    since = datetime.now(UTC) - WINDOW
    limits = (MAX_PER_ACCOUNT, MAX_PER_ADDRESS)
    attempt = await accounts.reserve_attempt(pool, email, _address(request), since, limits)
    if attempt is None:
        metrics.refuse("login_throttled")
        return "throttled"
    try:
        user = await _checked_user(gate, pool, email, password)
    except Busy:
        await accounts.forget_attempt(pool, attempt)
        metrics.refuse("login_busy")
        return "busy"
    if user is None:
        metrics.refuse("login_failed")  # the attempt stays counted: a failure
        return "failed"
    return user


def _login_csrf_ok(request: web.Request, form: dict[str, str]) -> bool:
    """Whether the form carries the token derived from the login form's signed cookie."""
    secret = request.app[SETTINGS].secret_key
    raw = request.cookies.get(LOGIN_CSRF_COOKIE)
    nonce = unsign(secret, raw) if raw else None
    return nonce is not None and csrf_ok(secret, nonce, form.get("csrf"))


def _login_refused(
    request: web.Request, typed: str, suite: str, message: str, status: int
) -> web.Response:
    """The login form again, with what was typed and why it was refused."""
    resp = _login_page(
        request, email=typed, suite=suite, message=message, error=True, status=status
    )
    if status == 503:
        resp.headers["Retry-After"] = str(BUSY_RETRY_S)
    return resp


async def _checked_user(
    gate: HashGate, pool: asyncpg.Pool, email: str, password: str
) -> asyncpg.Record | None:
    """The enabled account of ``email`` when ``password`` is its password; None otherwise.
    :class:`Busy` when too many password checks already wait."""
    user = await accounts.get_user(pool, email)
    stored = user["password_hash"] if user is not None and user["disabled_at"] is None else None
    # Argon2 takes tens of milliseconds of CPU and 64 MiB: off the event loop, a few at once.
    ok = await gate.run(verify_password, stored, password)
    return user if ok else None


async def _logged_in(request: web.Request, user: asyncpg.Record, email: str, password: str) -> None:
    """Forget the account's attempts, and rehash its password under today's parameters
    (another time if the hashing is busy)."""
    pool = request.app[DB_POOL]
    await accounts.clear_failures(pool, email)
    if needs_rehash(user["password_hash"]):
        with contextlib.suppress(Busy):
            rehashed = await request.app[HASHING].run(hash_password, password)
            await accounts.set_password(pool, user["id"], rehashed)


async def _open_session(
    request: web.Request, user: asyncpg.Record, email: str, address: str, suite: str
) -> web.HTTPSeeOther:
    """Open and audit a session for ``user``: the redirection to ``suite`` that sets its
    cookie."""
    pool = request.app[DB_POOL]
    secret = request.app[SETTINGS].secret_key
    sid = await accounts.create_session(pool, user["id"], SESSION_LIFETIME)
    await accounts.audit(pool, f"user:{user['id']} {email}", "session.open", address=address)
    resp = web.HTTPSeeOther(suite)
    set_cookie(
        resp,
        SESSION_COOKIE,
        sign(secret, sid),
        max_age=int(SESSION_LIFETIME.total_seconds()),
        secure=_secure(request),
    )
    resp.del_cookie(LOGIN_CSRF_COOKIE, path="/")
    return resp


async def logout(request: web.Request) -> web.StreamResponse:
    """POST with the session's CSRF token: ends the session here and in the database."""
    settings = request.app[SETTINGS]
    form = await _form(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    sid = unsign(settings.secret_key, cookie) if cookie else None
    if sid is not None:
        who = await accounts.session_principal(request.app[DB_POOL], sid)
        if who is not None and who.session_hash is not None:
            if not csrf_ok(settings.secret_key, who.session_hash, form.get("csrf")):
                request.app[METRICS].refuse("csrf")
                raise web.HTTPForbidden(reason="missing or wrong CSRF token; reload the page")
            await accounts.delete_session(request.app[DB_POOL], who.session_hash)
    resp = web.HTTPSeeOther("/connexion?sortie=1")
    resp.del_cookie(SESSION_COOKIE, path="/")
    raise resp


async def setup_get(request: web.Request) -> web.Response:
    token = request.query.get("jeton", "")
    user = await accounts.user_by_setup_token(request.app[DB_POOL], token) if token else None
    if user is None:
        return _expired_link(request)
    return _setup_page(request, token)


def _expired_link(request: web.Request) -> web.Response:
    return _render(
        title="Lien expiré",
        action="/connexion",
        csrf="",
        suite="/",
        fields="",
        button="Aller à la connexion",
        message="Ce lien n'est plus valable : demandez-en un nouveau à votre administrateur.",
        error=True,
        status=404,
    )


def _setup_page(
    request: web.Request, token: str, message: str = "", status: int = 200
) -> web.Response:
    secret = request.app[SETTINGS].secret_key
    return _render(
        title="Choisir un mot de passe",
        action="/connexion/activer",
        csrf=csrf_token(secret, "setup:" + token),
        suite="/",
        fields=Template(_SETUP_FIELDS).substitute(jeton=escape(token)),
        button="Enregistrer",
        message=message,
        error=bool(message),
        status=status,
    )


async def setup_post(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    pool = request.app[DB_POOL]
    form = await _form(request)
    token = form.get("jeton", "")
    user = await accounts.user_by_setup_token(pool, token) if token else None
    if user is None:
        return _expired_link(request)
    if not csrf_ok(settings.secret_key, "setup:" + token, form.get("csrf")):
        request.app[METRICS].refuse("csrf")
        return _setup_page(request, token, "Le formulaire a expiré ; merci de recommencer.", 403)
    password = form.get("password", "")
    problem = check_strength(password)
    if problem is None and password != form.get("confirm"):
        problem = "Les deux mots de passe ne sont pas identiques."
    if problem is not None:
        return _setup_page(request, token, problem, 400)
    try:
        hashed = await request.app[HASHING].run(hash_password, password)
    except Busy:
        resp = _setup_page(request, token, "Trop de demandes en cours : réessayez.", 503)
        resp.headers["Retry-After"] = str(BUSY_RETRY_S)
        return resp
    await accounts.set_password(pool, user["id"], hashed)
    await accounts.audit(
        pool, f"user:{user['id']} {user['email']}", "user.password_set", address=_address(request)
    )
    raise web.HTTPSeeOther("/connexion")


def setup_routes(app: web.Application) -> None:
    app[HASHING] = HashGate()  # one per instance: its bound on memory and CPU
    app.router.add_get("/connexion", login_get)
    app.router.add_post("/connexion", login_post)
    app.router.add_post("/deconnexion", logout)
    app.router.add_get("/connexion/activer", setup_get)
    app.router.add_post("/connexion/activer", setup_post)
