"""One recipient's digest as a MIME message: multipart/mixed holding multipart/alternative
(the plain text, then multipart/related: the HTML and its charts as inline PNG images
referenced by Content-ID) and the week's figures as a CSV attachment."""

from __future__ import annotations

import base64
import csv
import io
import secrets
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from service.digest import charts, story
from service.digest.model import Digest, ServiceWeek
from service.digest.render_html import digest_html
from service.digest.render_text import digest_text
from service.metrics.definitions import FIGURES
from service.web.cells import csv_cell


def image_names(d: Digest, focus: Sequence[str]) -> list[str]:
    """The charts a recipient's digest shows (render_html.py names them the same)."""
    mine = [s.slug for s in d.services if s.slug in focus]
    return ["rates", *([f"trend-{slug}" for slug in mine] if mine else ["trend-total"])]


def draw(d: Digest, name: str) -> bytes:
    """The chart called ``name``."""
    if name == "rates":
        return charts.rates_png(d.services)
    slug = name.removeprefix("trend-")
    s = d.total if slug == "total" else next(x for x in d.services if x.slug == slug)
    return charts.trend_png(s.trend, s.targets)


class Charts:
    """The charts of one digest, each drawn once however many recipients show it."""

    def __init__(self, digest: Digest) -> None:
        self.digest = digest
        self._png: dict[str, bytes] = {}

    def get(self, name: str) -> bytes:
        if name not in self._png:
            self._png[name] = draw(self.digest, name)
        return self._png[name]

    def for_recipient(self, focus: Sequence[str]) -> dict[str, bytes]:
        return {n: self.get(n) for n in image_names(self.digest, focus)}


CSV_FIELDS = (
    "week",
    "service",
    "name",
    *FIGURES,
    "previous_answer_rate",
    "previous_service_level",
    "delta_answer_rate",
    "delta_service_level",
    "trend_answer_rate",
    "callbacks_open",
    "callbacks_overdue",
)


def _csv_row(d: Digest, s: ServiceWeek, key: str) -> dict[str, Any]:
    """One row; its text cells neutralised so that no spreadsheet evaluates them."""
    row: dict[str, Any] = {
        "week": str(d.week),
        "service": key,
        "name": s.name,
        **{k: _plain(s.figures[k]) for k in FIGURES},
        "previous_answer_rate": _plain(s.previous["answer_rate"]),
        "previous_service_level": _plain(s.previous["service_level"]),
        "delta_answer_rate": _plain(s.delta("answer_rate")),
        "delta_service_level": _plain(s.delta("service_level")),
        "trend_answer_rate": " ".join(
            "" if p.answer_rate is None else repr(p.answer_rate) for p in s.trend
        ),
        "callbacks_open": s.callbacks_open,
        "callbacks_overdue": s.callbacks_overdue,
    }
    return {k: csv_cell(v) for k, v in row.items()}


def _plain(v: Any) -> Any:
    return "" if v is None else str(v).lower() if isinstance(v, bool) else v


def figures_csv(d: Digest) -> bytes:
    """The API's field names and plain numbers (for tools), one row per service, the
    unknown line (service empty) and the total (service ``total``)."""
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\r\n")
    w.writeheader()
    for s in d.services:
        w.writerow(_csv_row(d, s, s.slug or ""))
    w.writerow(_csv_row(d, d.total, "total"))
    return out.getvalue().encode("utf-8")


def build_message(
    d: Digest,
    recipient: str,
    focus: Sequence[str],
    images: Mapping[str, bytes],
    *,
    link: str | None = None,
) -> EmailMessage:
    """The message to ``recipient``, their services (``focus``) first."""
    # Short ids: a long one gets folded across header lines, which some clients misread.
    cids = {name: f"<{name}.{secrets.token_hex(6)}@decroche>" for name in images}
    msg = EmailMessage()
    msg["Subject"] = story.subject(d, focus)
    msg["To"] = recipient
    msg["Date"] = format_datetime(d.generated_at)
    msg["Message-ID"] = make_msgid(idstring=f"digest-{d.week}", domain="decroche.invalid")
    msg["Auto-Submitted"] = "auto-generated"  # no out-of-office replies to a robot
    msg.set_content(digest_text(d, focus, link=link))
    msg.add_alternative(
        digest_html(d, focus, lambda name: "cid:" + cids[name][1:-1], link=link),
        subtype="html",
    )
    html_part = msg.get_payload()[1]  # type: ignore[index]
    assert isinstance(html_part, EmailMessage)
    for name, png in images.items():
        html_part.add_related(
            png, maintype="image", subtype="png", cid=cids[name], filename=f"{name}.png"
        )
    msg.add_attachment(
        figures_csv(d), maintype="text", subtype="csv", filename=f"decroche-{d.week}.csv"
    )
    return msg


def preview_html(
    d: Digest, focus: Sequence[str], charts_: Charts, *, link: str | None = None
) -> str:
    """The HTML of a recipient's digest with its charts as ``data:`` URIs (opens anywhere)."""

    def src(name: str) -> str:
        return "data:image/png;base64," + base64.b64encode(charts_.get(name)).decode()

    return digest_html(d, focus, src, link=link)
