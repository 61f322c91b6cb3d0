"""A week of campaigns run end to end, time accelerated through the runner's clock: a manual
campaign's sheets mailed (aiosmtpd), an assisted campaign's calls placed through the fake
Twilio, measured and recorded, the town's PBX reporting what it received, evaluations
completed by the evaluators, and the results with the cross-check."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from campaigns.run.runner import SHEET_LEAD
from service.outside.mail import Mailer
from tests.campaigns.run.test_campaign_runner import steps
from tests.campaigns.web.test_campaigns_api import PERFECT
from tests.support.rig import CALLER_ID, Rig
from tests.support.smtp import Inbox, smtp_server
from tests.webhooks.test_cdr import post

WEEK = {"starts_on": "2026-11-23", "ends_on": "2026-11-27"}  # last week: evaluable now


async def test_a_week_of_mystery_calls_from_plan_to_results(rig: Rig) -> None:
    inbox = Inbox(rig.clock)
    with smtp_server(inbox) as url:
        rig.runner.mailer = Mailer(url, "qualite@ville.test")
        manual = await rig.campaign(**WEEK, mode="manual", name="Appels mystères — manuels")
        ids = {c["campaign_id"] for c in manual}
        everything = await rig.campaign(**WEEK, name="Appels mystères — assistés")
        assisted = [c for c in everything if c["campaign_id"] not in ids]
        # both were created the week before (their slots are after their creation)
        await rig.pool.execute("UPDATE campaigns SET created_at = '2026-11-16T09:00:00Z'")
        first = min(c["scheduled_at"] for c in everything)
        last = max(c["scheduled_at"] for c in everything)
        for t in steps(first - SHEET_LEAD - timedelta(hours=2), last + timedelta(minutes=15), 5):
            await rig.at(t)

    # manual: one sheet per call, before its slot; assisted: one Twilio call per call
    sheets = Counter(int(m["X-Decroche-Mystery-Call"]) for _, m in inbox.messages
                     if m["X-Decroche-Mystery-Call"])  # fmt: skip
    assert sheets == Counter(c["id"] for c in manual)
    placed = Counter(int(c["Url"].split("/")[-2]) for c in rig.fake.calls)
    assert placed == Counter(c["id"] for c in assisted)
    runs = {c["id"]: await rig.run(c["id"]) for c in assisted}
    answered = [c for c in assisted if runs[c["id"]]["outcome"] == "answered"]
    assert answered
    assert all(runs[c["id"]]["recording_sid"] for c in answered)

    # the town's PBX reports the calls it received from Décroché's number, but one
    reported = answered[1:]
    await post(rig.client, {"calls": [pbx_record(c, runs[c["id"]]) for c in reported]})

    # the evaluators complete their grids: the measure comes pre-filled for assisted calls
    for c in manual + answered:
        page = await (await rig.client.get(f"/api/v1/mystery-calls/{c['id']}")).json()
        answers = PERFECT | (page["run"]["prefill"] if page["run"] else {})
        resp = await rig.client.put(
            f"/api/v1/mystery-calls/{c['id']}/evaluation", json={"answers": answers}
        )
        assert resp.status == 201, await resp.text()
    saved = await rig.pool.fetchval(
        "SELECT answers->>'delai' FROM evaluations WHERE mystery_call_id = $1", answered[0]["id"]
    )
    assert float(saved) == round(runs[answered[0]["id"]]["ring_seconds"])

    for cid, done in ((min(ids), len(manual)), (assisted[0]["campaign_id"], len(answered))):
        results = await (await rig.client.get(f"/api/v1/campaigns/{cid}/results")).json()
        assert results["overall"]["done"] == done
        assert results["overall"]["mean_score"] is not None
        check = results["telephony"]
        if cid in ids:  # the PBX reported none of the manual calls
            assert check["seen"] == 0
            assert len(check["discrepancies"]) == len(manual)
        else:
            assert [d["call"] for d in check["discrepancies"]] == [answered[0]["id"]]
            assert check["seen"] == len(reported)


def pbx_record(call: Any, run: Any) -> dict[str, Any]:
    rang: datetime = run["target_ringing_at"]
    return {
        "id": f"pbx-{call['id']}",
        "line": call["number"],
        "caller": CALLER_ID,
        "started_at": rang.isoformat(),
        "answered_at": run["target_answered_at"].isoformat(),
        "ended_at": (rang + timedelta(minutes=2)).isoformat(),
        "direction": "inbound",
    }
