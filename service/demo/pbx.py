"""Simulated calls as other phone systems record them: an Asterisk ``queue_log`` (as
FreePBX writes it) and generic call-detail records.

The same :class:`~service.demo.traffic.SimCall` truth rendered three ways (Twilio callbacks,
``queue_log`` lines, CDR rows) must give the same figures; the tests and ``bench/import.py``
use these renderings. Calls to a closed service reach the queue and find nobody
(``EXITEMPTY``), as they do where the night routing still enters the queue. Our own call-backs
(outbound) are not queue calls: they appear in CDRs only.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from service.demo.traffic import SimCall
from service.municipality.model import Municipality

# Lines about no call, as a FreePBX log has them around the calls.
_MEMBER_EVENTS = ("ADDMEMBER", "PAUSE", "UNPAUSE", "REMOVEMEMBER", "PAUSEALL", "UNPAUSEALL")


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


def queue_of(m: Municipality, line: str) -> str:
    """The queue a line's calls enter: the service's first configured queue, else its slug."""
    svc = m.service_for(line, None)
    if svc is None:
        return "inconnue"
    return svc.queues[0] if svc.queues else svc.slug


def queue_log_lines(
    call: SimCall, m: Municipality, callid: str, rng: random.Random
) -> list[tuple[datetime, str]]:
    """The ``queue_log`` lines of one inbound call with their instants, in time order
    (without newlines)."""
    s, q = call.started_at, queue_of(m, call.line)
    out: list[tuple[datetime, str]] = []

    def put(at: datetime, agent: str, event: str, *args: object) -> None:
        fields = [str(_epoch(at)), callid, q, agent, event, *map(str, args)]
        out.append((at, "|".join(fields)))

    out.append((s, f"{_epoch(s)}|{callid}|NONE|NONE|DID|{call.line}"))
    put(s, "NONE", "ENTERQUEUE", "", call.caller, 1)
    waited = s + timedelta(seconds=call.wait_s)
    if call.topology == "closed":
        put(waited, "NONE", "EXITEMPTY", 1, 1, call.wait_s)
        return out
    agents = [f"PJSIP/2{rng.randrange(10, 99)}" for _ in range(call.agents)]
    for agent in agents[1:] if call.answered else agents:
        ring = min(call.wait_s, 15)
        put(s + timedelta(seconds=ring), agent, "RINGNOANSWER", ring * 1000)
    if call.answered:
        agent = agents[0]
        put(waited, agent, "CONNECT", call.wait_s, f"{callid}1", rng.randint(1, 9))
        end = call.ended_at
        how = rng.random()
        if how < 0.08:
            put(end, agent, "BLINDTRANSFER", "201", "from-internal", call.wait_s, call.talk_s, 1)
        elif how < 0.12:
            put(end, agent, "ATTENDEDTRANSFER", "BRIDGE", f"{callid}9", call.wait_s, call.talk_s, 1)
        elif how < 0.55:
            put(end, agent, "COMPLETECALLER", call.wait_s, call.talk_s, 1)
        else:
            put(end, agent, "COMPLETEAGENT", call.wait_s, call.talk_s, 1)
    elif call.timed_out:
        put(waited, "NONE", "EXITWITHTIMEOUT", 1, 1, call.wait_s)
    elif call.wait_s > 20 and rng.random() < 0.1:
        put(waited, "NONE", "EXITWITHKEY", 1, 1, 1, call.wait_s)  # pressed 1 for voicemail
    else:
        put(waited, "NONE", "ABANDON", 1, 1, call.wait_s)
    out.sort(key=lambda pair: pair[0])
    return out


def queue_log(
    calls: Iterable[SimCall], m: Municipality, seed: int = 0, *, members: bool = True
) -> Iterator[str]:
    """A whole log: every inbound call's lines merged in time order, with queue members
    logging in, pausing and leaving around them (``callid`` NONE) when ``members``."""
    rng = random.Random(seed)
    timed: list[tuple[datetime, int, str]] = []
    n = 0
    for call in calls:
        if call.topology == "callback":
            continue
        callid = f"{_epoch(call.started_at)}.{rng.randrange(10**6)}"
        for at, text in queue_log_lines(call, m, callid, rng):
            timed.append((at, n, text))
            n += 1
        if members and rng.random() < 0.05:
            event = rng.choice(_MEMBER_EVENTS)
            agent = f"PJSIP/2{rng.randrange(10, 99)}"
            at = call.started_at
            text = f"{_epoch(at)}|NONE|{queue_of(m, call.line)}|{agent}|{event}|"
            timed.append((at, n, text))
            n += 1
    timed.sort(key=lambda t: (t[0], t[1]))
    for _, _, text in timed:
        yield text


def cdr_row(call: SimCall) -> dict[str, Any]:
    """The generic call-detail record of one call."""
    outbound = call.topology == "callback"
    return {
        "id": call.sid,
        "line": call.line,
        "caller": call.caller,
        "started_at": call.started_at.isoformat(),
        "offered_at": None,
        "answered_at": call.answered_at.isoformat() if call.answered_at else None,
        "ended_at": call.ended_at.isoformat(),
        "agent": "poste-12" if call.answered else None,
        "queue": None,
        "direction": "outbound" if outbound else "inbound",
    }
