"""Twilio's request signatures (``X-Twilio-Signature``), and the one verification every
Twilio callback route runs: :func:`verified_form`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import parse_qsl

from aiohttp import web
from twilio.request_validator import RequestValidator

from service.keys import SETTINGS
from service.settings import Settings

log = logging.getLogger(__name__)

HEADER = "X-Twilio-Signature"


class TwilioRefused(Exception):
    """A Twilio request not taken, and not kept: the HTTP ``status``, the ``reason``
    counted in ``/metrics``, the ``message`` the sender reads. Nothing a refused request
    carries is stored: only a request whose signature checks out may reach quarantine."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


def signed_url(request: web.Request) -> str:
    """The URL the sender signed: ``DECROCHE_PUBLIC_URL`` + path + query when configured
    (behind a proxy the URL this server sees is not the one Twilio called), else the URL
    as the request's Host header names it."""
    base = request.app[SETTINGS].public_url
    if base is None:
        base = f"{request.scheme}://{request.host}"
    return base + request.raw_path


def signature_valid(
    auth_token: str, url: str, params: Mapping[str, str], signature: str | None
) -> bool:
    """Twilio's ``X-Twilio-Signature`` check (HMAC-SHA1 of the URL and sorted parameters).

    The exact URL is tried first with one HMAC: it is what Twilio signs in practice, and the
    check runs on every callback. Only on a mismatch does ``RequestValidator`` try the
    variants Twilio's own library accepts (with and without the default port).
    """
    if not signature:
        return False
    payload = url + "".join(k + params[k] for k in sorted(params))
    mac = hmac.new(auth_token.encode(), payload.encode("utf-8"), hashlib.sha1).digest()
    if hmac.compare_digest(base64.b64encode(mac).decode(), signature.strip()):
        return True
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


def form_params(body: bytes) -> dict[str, str]:
    """The parameters of a form-encoded UTF-8 body (the last of a repeated name wins).

    Twilio signs the form's parameters, so a body that is not a form cannot be verified:
    it is refused (400) and, being unverified, never kept."""
    try:
        return dict(
            parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
        )
    except (UnicodeDecodeError, ValueError):
        raise TwilioRefused(
            400,
            "unverifiable",
            "body is not form-encoded UTF-8, so its signature cannot be checked (not kept)",
        ) from None


async def verified_form(
    request: web.Request,
    settings: Settings,
    read_body: Callable[[], Awaitable[bytes]],
) -> tuple[dict[str, str], bytes]:
    """The parameters and raw body of a request Twilio signed; :class:`TwilioRefused` if not.

    The signature comes first: nothing the caller does with the body (parsing it, keeping
    it in quarantine) happens before it checks out. In order: no auth token configured
    (503), the body read by ``read_body`` (whatever it raises goes through: 404, 413), the
    signature header missing (403), a body that is not a form and so cannot be verified
    (400), a signature that does not match (403). None of these keeps anything.
    """
    token = settings.twilio_auth_token
    if token is None:
        # %r: the path is the sender's; quoted, it cannot forge a log line.
        log.error("Twilio callback to %r refused: TWILIO_AUTH_TOKEN is not set", request.raw_path)
        raise TwilioRefused(
            503, "not_configured", "Twilio webhooks are not configured (TWILIO_AUTH_TOKEN unset)"
        )
    body = await read_body()
    signature = request.headers.get(HEADER)
    if not signature:
        raise TwilioRefused(403, "missing_signature", f"missing {HEADER} header")
    params = form_params(body)
    if not signature_valid(token, signed_url(request), params, signature):
        log.warning(
            "Twilio callback with a bad signature refused (URL checked: %r)", signed_url(request)
        )
        raise TwilioRefused(
            403, "bad_signature", "signature does not match (check DECROCHE_PUBLIC_URL)"
        )
    return params, body
