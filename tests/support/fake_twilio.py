"""A local server speaking the part of Twilio's REST API Décroché uses.

It checks HTTP basic auth like Twilio (account SID, auth token), keeps recordings in
memory and records every request, so tests assert what Twilio would have been asked.
``fail_with`` makes it answer every request with that status (Twilio having a bad day).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class FakeTwilio:
    account_sid: str
    auth_token: str
    recordings: set[str] = field(default_factory=set)
    requests: list[tuple[str, str]] = field(default_factory=list)
    fail_with: int | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_delete(
            "/2010-04-01/Accounts/{account}/Recordings/{sid}.json", self._delete_recording
        )
        return app

    def _authorised(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"

    async def _delete_recording(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path))
        if self.fail_with is not None:
            return _error(self.fail_with, "Service unavailable")
        if not self._authorised(request):
            return _error(401, "Authenticate")
        sid = request.match_info["sid"]
        if sid not in self.recordings:
            return _error(404, f"The requested resource {request.path} was not found")
        self.recordings.discard(sid)
        return web.Response(status=204)


def _error(status: int, message: str) -> web.Response:
    return web.json_response(
        {"code": 20000 + status, "message": message, "status": status}, status=status
    )
