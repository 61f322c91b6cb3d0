"""Posting Twilio callbacks to a test server, signed as Twilio signs them."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from twilio.request_validator import RequestValidator


class TwilioPoster:
    """Signs and posts callbacks; the signed URL is what Twilio would have called."""

    def __init__(self, client: TestClient[Any, Any], auth_token: str) -> None:
        self.client = client
        self.validator = RequestValidator(auth_token)

    def url(self, path: str) -> str:
        return f"http://{self.client.host}:{self.client.port}{path}"

    async def post(
        self,
        params: dict[str, str],
        *,
        path: str = "/webhooks/twilio",
        signed_url: str | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> ClientResponse:
        sig = (
            signature
            if signature is not None
            else self.validator.compute_signature(signed_url or self.url(path), params)
        )
        hdrs = {"X-Twilio-Signature": sig, **(headers or {})}
        resp = await self.client.post(path, data=params, headers=hdrs)
        await resp.read()
        return resp
