"""Mystery calls placed through Twilio (pure): the TwiML, the outcomes, the ring time.

An assisted call has two legs. Décroché asks Twilio to call the **evaluator** (the leg it
creates); when the evaluator picks up, Twilio fetches the TwiML of ``answer``: a short
French briefing that asks for a key (a voicemail presses none), then, at ``ready``,
``<Dial>`` to the **target** number with the call recorded. Each
leg reports its events to its own callback; the ``<Dial>`` reports how it ended to
``dialed``, the recording to ``recording``.

The **ring time** is measured on the target leg, from its ``ringing`` event to its
``answered`` event (Twilio's ``Timestamp`` of each, to the second); without a ``ringing``
event, from ``initiated``. A PBX or a voice menu that picks up first is what answered:
the measure is the time to the line's pick-up, which the evaluator may correct on the
grid. It pre-fills the grid's first ``measured`` item, in seconds.

A **closed-hours probe** has one leg: Twilio calls the target itself, records the call
from its pick-up and plays ``probe_twiml`` (silence for ``PROBE_LISTEN_S``, then hang up);
its events go to ``probe``. Nobody picking up for 60 s — no message at all — is the outcome
``target-no-answer``; a person completes the closed-hours grid from the recording.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from xml.sax.saxutils import escape, quoteattr

EVENTS = ("answer", "ready", "evaluator", "target", "dialed", "recording", "probe")
KEY_TIMEOUT_S = 10  # the evaluator has this long, after the briefing, to press a key
DIAL_TIMEOUT_S = 60  # the target may ring this long before the call is "no answer"
PROBE_LISTEN_S = 45  # a probe listens this long to what the closed service plays
EVALUATOR_TIMEOUT_S = 30  # the evaluator's phone rings this long

# How a call ended, as results and the calendar say it.
OUTCOMES = {
    "answered": "le service a décroché",
    "evaluator-no-answer": "l'évaluateur n'a pas répondu",
    "target-busy": "le numéro du service était occupé",
    "target-no-answer": "le service n'a pas décroché",
    "failed": "l'appel n'a pas pu être passé",
}
DIAL_OUTCOMES = {
    "completed": "answered",
    "answered": "answered",
    "busy": "target-busy",
    "no-answer": "target-no-answer",
    "failed": "failed",
    "canceled": "failed",
}
# The target leg's statuses that time the ring, and the column each one sets.
TARGET_MOMENTS = {
    "initiated": "target_initiated_at",
    "queued": "target_initiated_at",
    "ringing": "target_ringing_at",
    "in-progress": "target_answered_at",
    "answered": "target_answered_at",
}
# A probe's own leg is the target's: how it ended is the outcome.
PROBE_OUTCOMES = {
    "completed": "answered",
    "no-answer": "target-no-answer",
    "busy": "target-busy",
    "failed": "failed",
    "canceled": "failed",
}
UNANSWERED = {"no-answer": "evaluator-no-answer", "busy": "evaluator-no-answer",
              "canceled": "evaluator-no-answer", "failed": "failed"}  # fmt: skip


def callback_path(call_id: int, event: str) -> str:
    return f"/webhooks/twilio/mystery/{call_id}/{event}"


def briefing_twiml(*, service_name: str, question: str | None, base: str, call_id: int) -> str:
    """What the evaluator hears on picking up. The bridge waits for a key: a voicemail
    that took the call presses none, and nobody is then called for nothing."""
    scenario = f" Scénario : {question}" if question else ""
    say = (
        f"Appel mystère pour le service {service_name}.{scenario} "
        "Appuyez sur une touche pour lancer l'appel."
    )
    ready = quoteattr(base + callback_path(call_id, "ready"))
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        f'<Gather numDigits="1" timeout="{KEY_TIMEOUT_S}" action={ready} method="POST">'
        f'<Say language="fr-FR">{escape(say)}</Say></Gather>'
        '<Say language="fr-FR">Aucune touche : l&#39;appel mystère n&#39;est pas lancé.</Say>'
        "<Hangup/></Response>"
    )


def bridge_twiml(*, number: str, caller_id: str, base: str, call_id: int) -> str:
    """The key was pressed: the bridge to the target, recorded from its pick-up."""

    def url(event: str) -> str:
        return quoteattr(base + callback_path(call_id, event))

    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        '<Say language="fr-FR">Mise en relation.</Say>'
        f'<Dial callerId={quoteattr(caller_id)} timeout="{DIAL_TIMEOUT_S}" '
        f'record="record-from-answer-dual" action={url("dialed")} method="POST" '
        f'recordingStatusCallback={url("recording")} recordingStatusCallbackMethod="POST">'
        f'<Number statusCallbackEvent="initiated ringing answered completed" '
        f'statusCallback={url("target")} statusCallbackMethod="POST">{escape(number)}</Number>'
        "</Dial></Response>"
    )


def closing_twiml(outcome: str) -> str:
    """After the ``<Dial>``: tell the evaluator how it went, and hang up."""
    said = OUTCOMES.get(outcome, "l'appel est terminé")
    text = f"Fin de l'appel mystère : {said}. Remplissez la grille."
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        f'<Say language="fr-FR">{escape(text)}</Say><Hangup/></Response>'
    )


def probe_twiml() -> str:
    """A probe says nothing: it listens (the call is recorded from the pick-up), then hangs up."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        f'<Pause length="{PROBE_LISTEN_S}"/><Hangup/></Response>'
    )


def hangup_twiml() -> str:
    """For a call that is no longer to be made (cancelled, re-planned, unknown)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        '<Say language="fr-FR">Cet appel mystère est annulé.</Say><Hangup/></Response>'
    )


def twilio_time(params: Mapping[str, str], received_at: datetime) -> datetime:
    """The event's ``Timestamp`` (RFC 2822, to the second), else when it was received."""
    raw = params.get("Timestamp")
    if raw:
        try:
            at = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return received_at
        if at.tzinfo is not None:
            return at
    return received_at


def ring_seconds(
    initiated: datetime | None, ringing: datetime | None, answered: datetime | None
) -> float | None:
    start = ringing or initiated
    if start is None or answered is None:
        return None
    return max(0.0, (answered - start).total_seconds())


def prefill(grid: Mapping[str, Any], ring: float | None) -> dict[str, int]:
    """The answers the measure gives: the first ``measured`` item of the grid."""
    if ring is None:
        return {}
    for section in grid.get("sections", []):
        for item in section.get("items", []):
            if item.get("kind") == "measured":
                return {item["id"]: round(ring)}
    return {}
