"""The campaigns' routes: the API (handlers in ``api_grids``, ``api_campaigns``, ``api_calls``),
Twilio's callbacks of assisted calls (``voice_callbacks``) and the pages (``pages``).

``/api/v1/grids`` and ``/api/v1/campaigns`` need the quality role (``service/web/access``);
``/api/v1/mystery-calls`` is open to any account, its handlers checking each call. Bodies
are JSON, or TOML (``Content-Type: application/toml``) with the structure of the file.
"""

from __future__ import annotations

from aiohttp import web

from campaigns.web import api_calls, api_campaigns, api_grids, pages, voice_callbacks


def setup_routes(app: web.Application) -> None:
    """Every route of the campaigns, on ``app``."""
    voice_callbacks.setup_routes(app)  # Twilio's callbacks of assisted calls (signed, no account)
    pages.setup_routes(app)
    r = app.router
    r.add_get("/api/v1/grids", api_grids.get_grids)
    r.add_post("/api/v1/grids", api_grids.post_grid)
    r.add_get("/api/v1/grids/{slug}", api_grids.get_grid)
    r.add_post("/api/v1/campaigns/plan", api_campaigns.post_plan)
    r.add_get("/api/v1/campaigns", api_campaigns.get_campaigns)
    r.add_post("/api/v1/campaigns", api_campaigns.post_campaign)
    r.add_get("/api/v1/campaigns/{id}", api_campaigns.get_campaign)
    r.add_get("/api/v1/campaigns/{id}/calls", api_campaigns.get_calls)
    # The stored plan: a campaign is planned when it is created; asking again gives it.
    r.add_get("/api/v1/campaigns/{id}/plan", api_campaigns.get_calls)
    r.add_post("/api/v1/campaigns/{id}/plan", api_campaigns.get_calls)
    r.add_post("/api/v1/campaigns/{id}/replan", api_campaigns.post_replan)
    r.add_post("/api/v1/campaigns/{id}/cancel", api_campaigns.post_cancel)
    r.add_get("/api/v1/campaigns/{id}/results", api_campaigns.get_results)
    r.add_get("/api/v1/mystery-calls", api_calls.get_my_calls)
    for base in ("/api/v1/mystery-calls/{id}", "/api/v1/campaigns/{campaign}/calls/{id}"):
        r.add_get(base, api_calls.get_mystery_call)
        r.add_get(f"{base}/evaluation", api_calls.get_evaluation)
        r.add_put(f"{base}/evaluation", api_calls.put_evaluation)
        r.add_post(f"{base}/evaluation", api_calls.put_evaluation)
        r.add_post(f"{base}/missed", api_calls.post_missed)
        r.add_get(f"{base}/recording", api_calls.get_recording)
