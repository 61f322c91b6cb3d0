"""The cross-check: each mystery call made is found among the calls the telephony recorded,
or listed as a discrepancy on the campaign's results (rule, then end to end)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from campaigns.score.crosscheck import MANUAL_AFTER, Made, Seen, cross_check
from service.accounts.model import Role
from tests.campaigns.web.test_campaign_pages import account, open_as
from tests.support.browser import needs_chromium
from tests.support.rig import ACCUEIL, CALLER_ID, ETAT_CIVIL, Rig
from tests.webhooks.test_cdr import post

T = datetime(2027, 3, 22, 9, 0, tzinfo=UTC)


def seen(i: int, minutes: float, *, answered: bool = True, caller: str | None = "h1") -> Seen:
    return Seen(i, ACCUEIL, T + timedelta(minutes=minutes), answered, caller)


def test_the_expected_caller_wins_then_a_withheld_number_then_nothing() -> None:
    m = Made(1, "assisted", ACCUEIL, T, "h1", True)
    assert cross_check([m], [seen(10, 0.2, caller="other"), seen(11, 2)])[0].seen_id == 11
    assert (
        cross_check([m], [seen(10, 0.2, caller="other"), seen(12, 3, caller=None)])[0].seen_id == 12
    )
    lost = cross_check([m], [seen(10, 0.2, caller="other")])[0]
    assert (lost.seen_id, lost.problem) == (None, "not seen by the telephony (ingestion gap?)")
    # outside the window, or on another line: not it
    assert cross_check([m], [seen(13, 6)])[0].seen_id is None
    other_line = Seen(14, ETAT_CIVIL, T, True, "h1")
    assert cross_check([m], [other_line])[0].seen_id is None


def test_one_recorded_call_explains_one_mystery_call_and_outcomes_are_compared() -> None:
    a = Made(1, "assisted", ACCUEIL, T, "h1", True)
    b = Made(2, "assisted", ACCUEIL, T + timedelta(minutes=1), "h1", False)
    found = cross_check([a, b], [seen(10, 0.5)])
    assert [(f.call_id, f.seen_id) for f in found] == [(1, 10), (2, None)]
    found = cross_check([a, b], [seen(10, 0.5), seen(11, 1.5, answered=True)])
    assert found[1].problem == "seen as answered, while Twilio saw it not answered"
    # a manual call: wider window, no outcome to compare, nearest when no caller is known
    m = Made(3, "manual", ACCUEIL, T, None, None)
    found = cross_check([m], [seen(20, 80, answered=False), seen(21, 100)])
    assert (found[0].seen_id, found[0].problem) == (20, None)
    assert timedelta(minutes=100) > MANUAL_AFTER


async def telephony_with_gaps(rig: Rig) -> tuple[int, int, int, int]:
    """Last week's assisted campaign run, its calls reported by the town's PBX but one, and
    one reported unanswered: (campaign, calls made, the unseen call, the one seen otherwise)."""
    # last week's campaign (the results' windows have closed), created the week before
    calls = await rig.campaign(starts_on="2026-11-23", ends_on="2026-11-27")
    await rig.pool.execute("UPDATE campaigns SET created_at = '2026-11-16T09:00:00Z'")
    for c in calls:
        await rig.at(c["scheduled_at"] + timedelta(seconds=30))
    runs = {c["id"]: await rig.run(c["id"]) for c in calls}
    made = [c for c in calls if runs[c["id"]]["outcome"] in ("answered", "target-no-answer")]
    assert made, "some calls reached the target"
    answered = [c for c in made if runs[c["id"]]["outcome"] == "answered"]
    assert len(answered) >= 2
    # the town's PBX reports the calls it received from Décroché's number, except one,
    # and one as not answered although Twilio bridged it
    gap, wrong = answered[0], answered[1]
    records = []
    for c in made:
        if c["id"] == gap["id"]:
            continue
        run = runs[c["id"]]
        rang = run["target_ringing_at"] or run["placed_at"]
        picked = run["target_answered_at"] if c["id"] != wrong["id"] else None
        records.append({
            "id": f"pbx-{c['id']}", "line": c["number"], "caller": CALLER_ID,
            "started_at": rang.isoformat(),
            "answered_at": picked.isoformat() if picked else None,
            "ended_at": (rang + timedelta(minutes=2)).isoformat(), "direction": "inbound",
        })  # fmt: skip
    # and a citizen's call on the same line at the same time is not mistaken for it
    records.append({
        "id": "citizen", "line": gap["number"], "caller": "+33612345678",
        "started_at": runs[gap["id"]]["placed_at"].isoformat(),
        "answered_at": None, "ended_at": None, "direction": "inbound",
    })  # fmt: skip
    resp = await post(rig.client, {"calls": records})
    assert resp.status == 200, await resp.text()
    return calls[0]["campaign_id"], len(made), gap["id"], wrong["id"]


async def test_the_results_list_what_the_telephony_never_saw_or_saw_otherwise(rig: Rig) -> None:
    cid, made, gap, wrong = await telephony_with_gaps(rig)
    results = await (await rig.client.get(f"/api/v1/campaigns/{cid}/results")).json()
    check = results["telephony"]
    assert (check["checked"], check["seen"], check["pending"]) == (made, made - 1, 0)
    problems = {d["call"]: d["problem"] for d in check["discrepancies"]}
    assert problems == {
        gap: "not seen by the telephony (ingestion gap?)",
        wrong: "seen as not answered, while Twilio saw it answered",
    }


@needs_chromium
async def test_the_results_page_shows_the_discrepancies(rig: Rig, page: Any) -> None:
    cid, made, gap, wrong = await telephony_with_gaps(rig)
    await account(rig.client, "qualite@ville.test", Role.QUALITY)
    await open_as(page, rig.client, "qualite@ville.test", f"/campagnes/{cid}/resultats")
    summary = await page.text_content("#telephony-summary")
    assert summary == (
        f"{made - 1} appel(s) mystère sur {made} retrouvé(s) dans la téléphonie ; 2 écart(s) :"
    )
    gap_row = await page.text_content(f'#telephony tr[data-call="{gap}"]')
    assert gap_row is not None
    assert "jamais vu par la téléphonie" in gap_row
    wrong_row = await page.text_content(f'#telephony tr[data-call="{wrong}"]')
    assert wrong_row is not None
    assert "vu non décroché par la téléphonie, décroché selon Twilio" in wrong_row
