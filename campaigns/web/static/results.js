// A campaign's results: figures, charts with confidence intervals, items, strata, the
// comparison with the previous campaign, and the exports.
"use strict";

const ID = location.pathname.split("/")[2];
const SVG = "http://www.w3.org/2000/svg";

function svgEl(parent, tag, attrs, text) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  if (text !== undefined) n.textContent = text;
  parent.append(n);
  return n;
}

// Horizontal bars with whiskers: rows of {label, value, low, high, few}; max is the scale.
function bars(svg, rows, max, mark, fmt) {
  svg.replaceChildren();
  const left = 200, width = 360, rowH = 30, top = 10;
  svg.setAttribute("viewBox", `0 0 760 ${top + rows.length * rowH + 30}`);
  const x = (v) => left + (width * Math.max(0, Math.min(max, v))) / max;
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    svgEl(svg, "text", { x: x(t * max) - 8, y: top + rows.length * rowH + 18 }, fmt(t * max));
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    svgEl(svg, "text", { x: 0, y: y + 18 }, r.label.length > 28 ? `${r.label.slice(0, 27)}…` : r.label);
    if (r.value === null || r.value === undefined) {
      svgEl(svg, "text", { x: left + 4, y: y + 18 }, "aucun appel réalisé");
      return;
    }
    const cls = mark === null ? "bar" : `bar ${r.value >= mark ? "ok" : "ko"}`;
    svgEl(svg, "rect", { x: left, y: y + 5, width: Math.max(1, x(r.value) - left), height: rowH - 12, class: cls,
      "data-value": r.value });
    if (r.low !== null && r.low !== undefined) {
      svgEl(svg, "line", { x1: x(r.low), x2: x(r.high), y1: y + rowH / 2 - 1, y2: y + rowH / 2 - 1, class: "whisker" });
      for (const v of [r.low, r.high]) svgEl(svg, "line", { x1: x(v), x2: x(v), y1: y + 8, y2: y + rowH - 10, class: "whisker" });
    }
    svgEl(svg, "text", { x: left + width + 10, y: y + 18 }, `${fmt(r.value)}${r.few ? " (trop peu d'appels)" : ""}`);
  });
  if (mark !== null) {
    svgEl(svg, "line", { x1: x(mark), x2: x(mark), y1: top, y2: top + rows.length * rowH, class: "mark" });
  }
}

const interval = (lo, hi, fmt) => (lo === null || lo === undefined ? "—" : `${fmt(lo)} – ${fmt(hi)}`);
const signed = (v, fmt) => (v === null || v === undefined ? "—" : `${v > 0 ? "+" : ""}${fmt(v)}`);

function figure(label, value, name, extra) {
  return el("div", { class: "figure", "data-figure": name }, el("strong", {}, value), el("small", {}, label),
    ...(extra ? [el("small", { class: "few" }, ` ${extra}`)] : []));
}

function render(r) {
  const g = r.grid, o = r.overall;
  const onScale = (v) => note(v);
  document.title = `Résultats — ${r.campaign.name} — Décroché`;
  $("#name").firstChild.textContent = `Résultats — ${r.campaign.name} `;
  $("#period").textContent = `du ${r.campaign.starts_on} au ${r.campaign.ends_on} · grille ${g.name} v${g.version}, note sur ${nf0.format(g.scale)}`;
  $("#campaign-link").href = `/campagnes/${ID}`;
  $("#overall").replaceChildren(
    figure("appels prévus", nf0.format(o.planned), "planned"),
    figure("réalisés", nf0.format(o.done), "done"),
    figure("manqués", nf0.format(o.missed), "missed"),
    figure(`note moyenne / ${nf0.format(g.scale)} (IC 95 % ${interval(o.mean_score_low, o.mean_score_high, onScale)})`, note(o.mean_score), "mean_score",
      o.too_few ? "trop peu d'appels pour conclure" : ""),
    figure(`taux de réussite (IC 95 % ${interval(o.pass_rate_low, o.pass_rate_high, pct)})`, pct(o.pass_rate), "pass_rate"),
    figure("part d'excellence", pct(o.excellent_share), "excellent_share"));
  const prev = r.previous;
  $("#previous").textContent = prev
    ? `Campagne précédente sur cette grille : « ${prev.name} » (${prev.starts_on} – ${prev.ends_on}) — note ${note(prev.overall.mean_score)}, `
      + `réussite ${pct(prev.overall.pass_rate)} ; évolution : ${signed(prev.overall.delta_mean_score, note)} point(s) de note, `
      + `${signed(prev.overall.delta_pass_rate === null ? null : prev.overall.delta_pass_rate * 100, (v) => nf0.format(v))} point(s) de réussite`
      + (prev.same_grid_version ? "." : " (autre version de la grille).")
    : "Pas de campagne précédente sur cette grille.";
  const base = `/api/v1/campaigns/${ID}/results`;
  $("#exports").replaceChildren(
    el("a", { class: "button", href: `${base}?format=xlsx` }, "Classeur (XLSX)"),
    ...["services", "sections", "items", "calls"].map((t) =>
      el("a", { class: "button", href: `${base}?format=csv&table=${t}` }, `CSV : ${{ services: "services", sections: "sections", items: "critères", calls: "appels" }[t]}`)));
  bars($("#chart-services"), r.services.map((s) => ({ label: s.name, value: s.mean_score, low: s.mean_score_low, high: s.mean_score_high, few: s.too_few })),
    g.scale, g.pass_mark, onScale);
  bars($("#chart-pass"), r.services.map((s) => ({ label: s.name, value: s.pass_rate, low: s.pass_rate_low, high: s.pass_rate_high, few: s.too_few })),
    1, null, pct);
  bars($("#chart-sections"), r.sections.map((s) => ({ label: s.title, value: s.mean_score, low: s.mean_score_low, high: s.mean_score_high, few: s.too_few })),
    g.scale, g.pass_mark, onScale);
  const prevServices = prev ? prev.services : {};
  $("#services tbody").replaceChildren(...r.services.map((s) => el("tr", { "data-service": s.service },
    el("td", {}, s.name, ...(s.too_few ? [el("span", { class: "few" }, " (trop peu d'appels)")] : [])),
    el("td", {}, nf0.format(s.planned)), el("td", { "data-figure": "done" }, nf0.format(s.done)),
    el("td", {}, nf0.format(s.missed)), el("td", { "data-figure": "mean_score" }, note(s.mean_score)),
    el("td", {}, interval(s.mean_score_low, s.mean_score_high, onScale)),
    el("td", { "data-figure": "pass_rate" }, pct(s.pass_rate)), el("td", {}, interval(s.pass_rate_low, s.pass_rate_high, pct)),
    el("td", {}, pct(s.excellent_share)),
    el("td", {}, prevServices[s.service] ? signed(prevServices[s.service].delta_mean_score, note) : "—"))));
  const titles = Object.fromEntries(r.sections.map((s) => [s.id, s.title]));
  $("#items tbody").replaceChildren(...r.items.map((it) => el("tr", { "data-item": it.id },
    el("td", {}, titles[it.section]), el("td", {}, it.label + (it.critical ? " (éliminatoire)" : "")),
    el("td", {}, nf0.format(it.n)), el("td", {}, nf0.format(it.na)),
    el("td", { "data-figure": "mean_value" }, pct(it.mean_value)), el("td", {}, nf0.format(it.zero)))));
  $("#strata tbody").replaceChildren(...[...r.strata.moment, ...r.strata.half_day].map((s) => el("tr", {},
    el("td", {}, s.label + (s.too_few ? " (trop peu d'appels)" : "")), el("td", {}, nf0.format(s.done)),
    el("td", {}, note(s.mean_score)), el("td", {}, pct(s.pass_rate)))));
  renderTelephony(r.telephony);
  $("#definitions").replaceChildren(...Object.values(r.definitions).flatMap((text) => {
    const [term, ...rest] = text.split(" : ");
    return [el("dt", {}, term), el("dd", {}, rest.join(" : "))];
  }));
}

// The mystery calls made, looked for among the calls the telephony recorded.
const GAPS = {
  "not seen by the telephony (ingestion gap?)": "jamais vu par la téléphonie (source manquante ou appel perdu ?)",
};
function gapLabel(problem) {
  if (GAPS[problem]) return GAPS[problem];
  const m = /^seen as (.+), while Twilio saw it (.+)$/.exec(problem);
  const fr = { answered: "décroché", "not answered": "non décroché" };
  return m ? `vu ${fr[m[1]]} par la téléphonie, ${fr[m[2]]} selon Twilio` : problem;
}
function renderTelephony(t) {
  const modes = { manual: "manuel", assisted: "assisté", probe: "sonde hors horaires" };
  $("#telephony-summary").textContent = t.checked
    ? `${nf0.format(t.seen)} appel(s) mystère sur ${nf0.format(t.checked)} retrouvé(s) dans la téléphonie`
      + (t.discrepancies.length ? ` ; ${nf0.format(t.discrepancies.length)} écart(s) :` : " ; aucun écart.")
      + (t.pending ? ` (${nf0.format(t.pending)} encore trop récent(s) pour être vérifié(s))` : "")
    : "Aucun appel mystère passé n'est encore vérifiable.";
  $("#telephony").hidden = !t.discrepancies.length;
  $("#telephony tbody").replaceChildren(...t.discrepancies.map((d) => el("tr", { "data-call": d.call },
    el("td", {}, el("a", { href: `/appels-mysteres/${d.call}` }, `n° ${d.call}`)),
    el("td", {}, when(d.scheduled_at)), el("td", {}, d.number), el("td", {}, modes[d.mode] || d.mode),
    el("td", {}, gapLabel(d.problem)))));
}

async function load() {
  const r = await api(`/api/v1/campaigns/${ID}/results`);
  render(r);
  $("#status").textContent = r.overall.done ? "" : "Aucun appel n'est encore évalué.";
  document.body.dataset.loaded = "true";
}

whoAmI().then(load).catch((err) => showError($("#status"), err));
