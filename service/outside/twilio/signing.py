"""Twilio's request signatures (``X-Twilio-Signature``), for every Twilio callback route."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from aiohttp import web
from twilio.request_validator import RequestValidator

from service.keys import SETTINGS


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
