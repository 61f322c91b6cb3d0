"""The digest as an HTML e-mail that Outlook renders too: a 640-px table layout, styles
inlined into each element (css-inline), images referenced by ``src(name)`` — ``cid:`` in a
message, ``data:`` URIs in a preview."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

import css_inline

from service.digest import formatting as fmt
from service.digest import story
from service.digest.model import Digest, MysteryWeek, ServiceWeek

# Inlined into each element: mail clients ignore or strip <style> blocks.
CSS = """
body { margin: 0; padding: 0; background: #f2f4f7; }
.outer { background: #f2f4f7; width: 100%; }
.shell { padding: 16px 8px; }
.card { background: #ffffff; border: 1px solid #dde2ea; font-family: Arial, Helvetica,
        sans-serif; color: #1f2937; font-size: 14px; line-height: 1.45; }
.pad { padding: 16px 24px; }
.brand { color: #1f4e9c; font-size: 12px; font-weight: bold; letter-spacing: 1px;
         text-transform: uppercase; }
h1 { margin: 4px 0 2px 0; font-size: 22px; color: #111827; }
h2 { margin: 18px 0 8px 0; font-size: 17px; color: #111827; }
h3 { margin: 10px 0 4px 0; font-size: 15px; color: #111827; }
.muted { color: #6b7280; font-size: 12px; }
.headline { font-size: 18px; font-weight: bold; }
.ok { color: #1b5e20; }
.ko { color: #b71c1c; }
.na { color: #6b7280; }
.box { background: #f7f9fc; border-left: 4px solid #1f4e9c; padding: 10px 14px; }
.box-ko { background: #fdf3f3; border-left: 4px solid #c62828; padding: 10px 14px; }
table.figures { border-collapse: collapse; width: 100%; font-size: 12px; table-layout: auto; }
table.figures th { background: #eef2f8; color: #374151; text-align: left; padding: 6px 5px;
                   border-bottom: 1px solid #cfd6e1; font-weight: bold; }
/* Cells take their padding from cellpadding, numbers align="right" nowrap, rows valign:
attributes Outlook honours, so that each of the hundreds of cells carries one declaration
(Gmail clips a message whose HTML passes 102 KB). */
table.figures td { border-bottom: 1px solid #e5e7eb; }
th.num { text-align: right; white-space: nowrap; }
table.figures td.trend { color: #6b7280; font-size: 11px; padding-top: 0; text-align: left; }
table.figures tr.has-trend td { border-bottom: 0; }
tr.mine td { background: #fffbe6; }
tr.total td { font-weight: bold; border-top: 2px solid #cfd6e1; }
ul { margin: 4px 0 8px 0; padding-left: 20px; }
.mystery { margin-top: 6px; }
.foot { color: #6b7280; font-size: 11px; line-height: 1.4; }
a { color: #1f4e9c; }
/* Phones (clients that honour media queries; Outlook on a desktop ignores this): tighter. */
@media (max-width: 600px) {
  .pad { padding: 12px 6px !important; }
  .shell { padding: 8px 0 !important; }
  table.figures { font-size: 10px !important; }
  table.figures td, table.figures th { padding: 4px 2px !important; }
  table.figures th { white-space: normal !important; }
  table.figures th .muted { font-size: 9px !important; }
  table.figures td.trend { font-size: 10px !important; }
  h1 { font-size: 19px !important; }
}
"""

Src = Callable[[str], str]


def _e(text: object) -> str:
    return html.escape(str(text))


def _verdict_cell(s: ServiceWeek) -> str:
    cls = "na" if s.met is None else "ok" if s.met else "ko"
    mark = "—" if s.met is None else "✔ tenu" if s.met else "✘ non tenu"
    return f'<td class="{cls}"><b>{mark}</b></td>'


def _target(s: ServiceWeek, default: tuple[float, float] | None, i: int) -> str:
    """A service's own target, under its figure, when it is not the town's."""
    if not s.targets or s.targets[i] == (default or (None, None))[i]:
        return ""
    return f'<br><span class="muted">cible {fmt.pct(s.targets[i])}</span>'


def _row(s: ServiceWeek, default: tuple[float, float] | None, css: str = "") -> str:
    f = s.figures
    cls = f' class="{css}"' if css else ""
    trend = ""
    if s.slug is not None or css == "total":
        trend = (
            f'<tr{cls}><td colspan="8" class="trend">Quatre semaines : '
            f"{_e(story.trend_text(s))}</td></tr>"
        )
    return (
        f'<tr{cls} valign="top"><td class="name">{_e(s.name)}</td>{_verdict_cell(s)}'
        f'<td align="right" nowrap>{fmt.pct(f["answer_rate"])}{_target(s, default, 0)}</td>'
        f'<td align="right" nowrap>{fmt.pct(f["service_level"])}{_target(s, default, 1)}</td>'
        f'<td align="right" nowrap>{fmt.points(s.delta("answer_rate"))}</td>'
        f'<td align="right" nowrap>{fmt.count(f["lost"])}</td>'
        f'<td align="right" nowrap>{fmt.count(f["out_of_hours"])}</td>'
        f'<td align="right" nowrap>{_e(story.callbacks(s))}</td></tr>{trend}'
    )


def _table(d: Digest, services: Sequence[ServiceWeek], focus: Sequence[str]) -> str:
    t = d.total.targets
    head = (
        "<tr><th>Service</th><th>Engagement</th>"
        f'<th class="num">Décroché<br><span class="muted">cible {fmt.pct(t[0] if t else None)}'
        "</span></th>"
        f'<th class="num">Niveau de service<br><span class="muted">cible '
        f"{fmt.pct(t[1] if t else None)}</span></th>"
        '<th class="num">Sur une<br>semaine</th><th class="num">Perdus</th>'
        '<th class="num">Hors<br>horaires</th><th class="num">Rappels<br>en attente</th></tr>'
    )
    rows = "".join(_row(s, t, "mine" if s.slug in focus else "") for s in services)
    return (
        '<table class="figures" role="presentation" cellpadding="5" cellspacing="0">'
        f"{head}{rows}{_row(d.total, t, 'total')}</table>"
    )


def _service_block(s: ServiceWeek, src: Src) -> str:
    f = s.figures
    worst = story.half_hours(s)
    out = [
        f'<h3>{_e(s.name)} : <span class="{"ok" if s.met else "ko" if s.met is False else "na"}">'
        f"{_e(story.verdict(s))}</span></h3>",
        f"<p>Taux de décroché <b>{fmt.pct(f['answer_rate'])}</b> "
        f"({fmt.points(s.delta('answer_rate'))} sur une semaine), niveau de service "
        f"<b>{fmt.pct(f['service_level'])}</b> ({fmt.points(s.delta('service_level'))}) ; "
        f"{fmt.many(f['offered'], 'appel présenté', 'appels présentés')}, "
        f"{fmt.many(f['lost'], 'perdu', 'perdus')}, "
        f"attente moyenne {fmt.seconds(f['asa_s'])}, la plus longue "
        f"{fmt.seconds(f['max_wait_s'])} ; "
        f"{fmt.many(f['out_of_hours'], 'appel hors horaires', 'appels hors horaires')} ; "
        f"rappels en attente : {_e(story.callbacks(s))}.</p>",
    ]
    if worst:
        out.append("<p>Les demi-heures qui ont perdu le plus d'appels :</p><ul>")
        out += [f"<li>{_e(w)}</li>" for w in worst]
        out.append("</ul>")
    out.append(_img(src, f"trend-{s.slug}", f"Tendance sur quatre semaines — {s.name}", 640))
    return "".join(out)


def _img(src: Src, name: str, alt: str, width: int) -> str:
    return (
        f'<img src="{_e(src(name))}" width="{width}" alt="{_e(alt)}" '
        'style="display:block; width:100%; max-width:640px; height:auto; border:0;">'
    )


def _mystery(c: MysteryWeek) -> str:
    out = [
        f'<h3>{_e(c.name)} <span class="muted">(grille « {_e(c.grid_name)} »)</span></h3>',
        f"<p>{_e(story.mystery_line(c))}</p>",
    ]
    if c.weakest:
        out.append(f"<p>Points les plus faibles : {_e(story.weakest(c))}.</p>")
    if c.discrepancies:
        out.append(
            f'<p class="ko">{_e(story.discrepancies(c))} (voir les résultats de la campagne).</p>'
        )
    if c.services:
        rows = "".join(
            f'<tr valign="top"><td>{_e(s.name)}</td><td align="right" nowrap>'
            f"{fmt.count(s.done)}</td>"
            f'<td align="right" nowrap>{fmt.score(s.mean_score, c.scale)}</td>'
            f'<td align="right" nowrap>{fmt.pct(s.pass_rate)}</td></tr>'
            for s in c.services
        )
        out.append(
            '<table class="figures" role="presentation" cellpadding="5" cellspacing="0">'
            '<tr><th>Service</th><th class="num">Évalués</th><th class="num">Note moyenne'
            f'</th><th class="num">Réussis</th></tr>{rows}</table>'
        )
    return "".join(out)


def digest_html(d: Digest, focus: Sequence[str], src: Src, *, link: str | None = None) -> str:
    """The whole message body, styles inlined."""
    services = story.ordered(d, focus)
    mine = [s for s in services if s.slug in focus]
    parts = _summary(d)
    if mine:
        parts += _section("Votre service", [_service_block(s, src) for s in mine])
    rates = _img(src, "rates", "Taux de décroché et niveau de service par service", 640)
    parts += _section("Les services cette semaine", [rates, _table(d, services, focus)])
    if not mine:
        trend = _img(src, "trend-total", "Tendance sur quatre semaines, tous services", 640)
        parts += _section("Tendance sur quatre semaines", [trend])
    hurting = [s for s in services if s.worst and s not in mine]
    if hurting:
        parts += _section(
            "Les demi-heures qui ont perdu le plus d'appels", [_half_hours(s) for s in hurting]
        )
    if d.mystery:
        parts += _section("Appels mystères de la semaine", [_mystery(c) for c in d.mystery])
    parts += _foot(d, link)
    return _page(d, focus, "".join(parts))


def _summary(d: Digest) -> list[str]:
    """The title, the week's headline, where it hurts and what the mystery calls found."""
    sore = story.sore_points(d)
    parts = [
        '<div class="pad">',
        f'<div class="brand">Décroché · {_e(d.municipality)}</div>',
        f"<h1>Synthèse de la {_e(fmt.week_label(d.week))}</h1>",
        f'<div class="muted">{_e(fmt.week_span(d.week))} — Engagement 8 : « Nous répondons '
        "à tous vos appels en limitant au maximum votre temps d'attente »</div>",
        "</div>",
        f'<div class="pad"><div class="{"box-ko" if sore else "box"}">',
        f'<div class="headline">{_e(story.headline(d))}</div>',
        f"<div>{_e(story.total_line(d))}</div>",
    ]
    if sore:
        parts.append("<div><b>Là où ça coince :</b></div><ul>")
        parts += [f"<li>{_e(line)}</li>" for line in sore]
        parts.append("</ul>")
    if (mystery := story.mystery_summary(d)) is not None:
        parts.append(f'<div class="mystery">{_e(mystery)}</div>')
    parts.append("</div></div>")
    return parts


def _section(title: str, blocks: Sequence[str]) -> list[str]:
    return [f'<div class="pad"><h2>{title}</h2>', *blocks, "</div>"]


def _half_hours(s: ServiceWeek) -> str:
    """A service's worst half-hours, as a list under its name."""
    items = "".join(f"<li>{_e(w)}</li>" for w in story.half_hours(s))
    return f"<h3>{_e(s.name)}</h3><ul>{items}</ul>"


def _foot(d: Digest, link: str | None) -> list[str]:
    more = f' <a href="{_e(link)}">Ouvrir le tableau de bord</a>.' if link else ""
    return [
        '<div class="pad foot">',
        f"<p>{_e(story.definitions(d))} Rappels en attente : au moment de l'envoi. "
        f"Les chiffres sont joints en CSV.{more}</p>",
        "</div>",
    ]


def _page(d: Digest, focus: Sequence[str], body: str) -> str:
    """``body`` in the page's outer tables, styles inlined."""
    page = (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(story.subject(d, focus))}</title><style>{CSS}</style></head><body>"
        '<table class="outer" role="presentation" width="100%" cellpadding="0" '
        'cellspacing="0"><tr><td class="shell" align="center">'
        '<table class="card" role="presentation" width="640" cellpadding="0" '
        'cellspacing="0" style="max-width: 640px; width: 100%;"><tr><td>'
        f"{body}</td></tr></table></td></tr></table></body></html>"
    )
    return str(css_inline.inline(page, keep_at_rules=True))
