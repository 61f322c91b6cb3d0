"""The one way to get a Twilio REST client: :func:`twilio_client`, and the app's context.

The service holds one client for its lifetime (``app[TWILIO]``), so every REST call and
every recording streamed share one HTTP session; the CLI builds its own the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from service.keys import SETTINGS, TWILIO
from service.outside.twilio.rest import TwilioRest
from service.settings import Settings


def twilio_client(settings: Settings) -> TwilioRest:
    """The account's REST client for ``settings`` (open it with ``async with``)."""
    return TwilioRest(settings)


async def twilio_ctx(app: web.Application) -> AsyncIterator[None]:
    """``app[TWILIO]``: the service's one client, its HTTP session closed when it stops."""
    async with twilio_client(app[SETTINGS]) as client:
        app[TWILIO] = client
        yield
