"""Where a recording lives, and deleting it there when it expires or its caller is erased.

A Twilio recording (``…/Accounts/AC…/Recordings/RE…``) is deleted through Twilio's API; the
call keeps its address until Twilio confirms, so a failure is retried at the next run. Any
other address (a PBX's own file server) is only forgotten: that system's retention is its
own, which the README says.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Protocol
from urllib.parse import urlsplit

_TWILIO_RECORDING = re.compile(r"/Accounts/(AC[0-9a-fA-F]{32})/Recordings/(RE[0-9a-fA-F]{32})")


class Outcome(StrEnum):
    DELETED = "deleted"  # deleted where it lives (or already gone there)
    FORGOTTEN = "forgotten"  # not ours to delete: only the address is dropped
    KEPT = "kept"  # could not be deleted now; retried later


class RecordingDeleter(Protocol):
    async def delete_recording(self, account_sid: str, recording_sid: str) -> None: ...


def twilio_recording(url: str) -> tuple[str, str] | None:
    """(account SID, recording SID) of a Twilio recording address, else None."""
    m = _TWILIO_RECORDING.search(urlsplit(url).path)
    return (m[1], m[2]) if m else None


async def delete_recording(url: str, twilio: RecordingDeleter, errors: list[str]) -> Outcome:
    """Delete the recording at ``url``; a reason is appended to ``errors`` when kept."""
    sids = twilio_recording(url)
    if sids is None:
        return Outcome.FORGOTTEN
    try:
        await twilio.delete_recording(*sids)
    except Exception as exc:  # TwilioUnavailable, or anything the library raises
        errors.append(f"{sids[1]}: {exc}")
        return Outcome.KEPT
    return Outcome.DELETED
