// Tableau de bord: Engagement 8 figures of a period, from the same API the tools use.
"use strict";

const $ = (sel) => document.querySelector(sel);
const nf1 = new Intl.NumberFormat("fr-FR", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const nf0 = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: 0 });
const pct = (v) => (v === null || v === undefined ? "—" : `${nf1.format(100 * v)}\u202f%`);
const sec = (v) => (v === null || v === undefined ? "—" : `${nf0.format(v)} s`);
const DAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"];
const FIRST_SLOT = 14; // 07:00
const LAST_SLOT = 40; // 20:00 (excluded)

function isoDay(d) {
  const z = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${z(d.getMonth() + 1)}-${z(d.getDate())}`;
}

function addDays(d, n) {
  const out = new Date(d);
  out.setDate(out.getDate() + n);
  return out;
}

function lastWeek() {
  const today = new Date();
  const monday = addDays(today, -((today.getDay() + 6) % 7) - 7);
  return [monday, addDays(monday, 6)];
}

async function getJSON(url) {
  const resp = await fetch(url, { headers: { Accept: "application/json" } });
  if (resp.status === 401) {
    // The session ended (expired, or logged out elsewhere): back to the login page.
    const here = window.location.pathname + window.location.search;
    window.location.assign(`/connexion?suite=${encodeURIComponent(here)}`);
    throw new Error("session expirée");
  }
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    // The request's id, also in the service's log: what to quote when reporting the fault.
    const ref = body.request_id ? ` (référence : ${body.request_id})` : "";
    throw new Error(`${body.error || `erreur ${resp.status}`}${ref}`);
  }
  return body;
}

function gauge(label, value, target, name) {
  const fill = el("div", { class: `fill${value !== null && value < target ? " below" : ""}` });
  fill.style.width = `${Math.max(0, Math.min(1, value || 0)) * 100}%`;
  const mark = el("div", { class: "mark", title: `cible ${pct(target)}` });
  mark.style.left = `${target * 100}%`;
  return el("div", { class: "gauge", "data-figure": name },
    el("div", { class: "label" }, el("span", {}, label), el("strong", {}, pct(value))),
    el("div", { class: "bar" }, fill, mark),
    el("small", {}, `cible ${pct(target)}`));
}

function card(row, policy, isTotal) {
  const state = row.met === null ? "none" : row.met ? "ok" : "ko";
  const verdict = row.met === null ? "aucun appel présenté" : row.met ? "Engagement tenu" : "Engagement non tenu";
  const facts = el("dl", { class: "facts" });
  const add = (name, text, value) => facts.append(el("dt", {}, text), el("dd", { "data-figure": name }, value));
  add("received", "Appels reçus", nf0.format(row.received));
  add("offered", "Appels présentés", nf0.format(row.offered));
  add("lost", "Appels perdus", nf0.format(row.lost));
  add("out_of_hours", "Hors horaires", nf0.format(row.out_of_hours));
  add("asa_s", "Attente moyenne", sec(row.asa_s));
  add("wait_p90_s", "Attente P90", sec(row.wait_p90_s));
  add("max_wait_s", "Attente maximale", sec(row.max_wait_s));
  return el("article", {
    class: `card ${state}${isTotal ? " total" : ""}`,
    "data-service": isTotal ? "total" : row.service === null ? "unknown" : row.service,
  },
  el("h3", {}, isTotal ? "Ensemble des services" : row.name),
  el("span", { class: "badge" }, verdict),
  gauge("Taux de décroché", row.answer_rate, policy.target_answer_rate, "answer_rate"),
  gauge(`Niveau de service (≤ ${nf0.format(policy.answer_within_s)} s)`, row.service_level,
    policy.target_service_level, "service_level"),
  facts);
}

function renderCards(report) {
  const cards = $("#cards");
  cards.replaceChildren();
  for (const row of report.services) cards.append(card(row, row.policy || report.policy, false));
  cards.append(card(report.total, report.policy, true));
  const p = report.policy;
  $("#targets").textContent = `Cibles : taux de décroché ≥ ${pct(p.target_answer_rate)}, `
    + `niveau de service ≥ ${pct(p.target_service_level)} (décroché en ${nf0.format(p.answer_within_s)} s au plus) ; `
    + `un appel raccroché avant ${nf0.format(p.short_abandon_s)} s n'est pas compté comme présenté.`;
}

function renderWeeks(data, policy) {
  const svg = $("#weeks");
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  const mk = (tag, attrs) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    svg.append(n);
    return n;
  };
  const rows = data.rows;
  const [x0, x1, y0, y1] = [50, 700, 230, 20];
  const x = (i) => (rows.length < 2 ? (x0 + x1) / 2 : x0 + (i * (x1 - x0)) / (rows.length - 1));
  const y = (v) => y0 - v * (y0 - y1);
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    mk("line", { x1: x0, x2: x1, y1: y(v), y2: y(v), class: "axis", "stroke-opacity": 0.3 });
    mk("text", { x: 5, y: y(v) + 4 }).textContent = `${v * 100} %`;
  }
  for (const t of [policy.target_answer_rate, policy.target_service_level]) {
    mk("line", { x1: x0, x2: x1, y1: y(t), y2: y(t), class: "target" });
  }
  rows.forEach((r, i) => { mk("text", { x: x(i) - 22, y: 252 }).textContent = r.key; });
  for (const [field, cls] of [["answer_rate", "rate"], ["service_level", "level"]]) {
    const pts = rows.map((r, i) => [i, r[field]]).filter(([, v]) => v !== null);
    if (pts.length) {
      mk("polyline", { class: cls, "data-series": field, points: pts.map(([i, v]) => `${x(i)},${y(v)}`).join(" ") });
      for (const [i, v] of pts) mk("circle", { cx: x(i), cy: y(v), r: 4, class: cls, "data-series": field });
    }
  }
}

function heatColour(n, max) {
  const t = max ? n / max : 0;
  const light = 96 - t * 66; // from almost white to deep blue
  return `hsl(230, 80%, ${light}%)`;
}

function renderHeatmap(data) {
  const table = $("#heatmap");
  table.replaceChildren();
  const cells = new Map(data.cells.map((c) => [`${c.weekday}|${c.slot}`, c]));
  const max = Math.max(0, ...data.cells.map((c) => c.received));
  const head = el("tr", {}, el("th", {}, ""));
  const slots = [];
  for (let s = FIRST_SLOT; s < LAST_SLOT; s++) {
    const label = `${String(Math.floor(s / 2)).padStart(2, "0")}:${s % 2 ? "30" : "00"}`;
    slots.push(label);
    head.append(el("th", { scope: "col" }, label));
  }
  table.append(head);
  DAYS.forEach((day, i) => {
    const tr = el("tr", {}, el("th", { scope: "row" }, day));
    for (const slot of slots) {
      const c = cells.get(`${i + 1}|${slot}`) || { received: 0, lost: 0 };
      const td = el("td", { "data-weekday": i + 1, "data-slot": slot, "data-received": c.received,
        title: `${day} ${slot} : ${c.received} appel(s) reçu(s), ${c.lost} perdu(s)` },
      c.received ? `${c.received}${c.lost ? ` (${c.lost})` : ""}` : "");
      td.style.background = heatColour(c.received, max);
      td.style.color = c.received / (max || 1) > 0.55 ? "#fff" : "#161616";
      tr.append(td);
    }
    table.append(tr);
  });
  table.dataset.max = String(max);
}

function downloadHeatmap() {
  const table = $("#heatmap");
  const rows = [...table.querySelectorAll("tr")].slice(1);
  const cw = 44, ch = 30, left = 90, top = 50;
  const canvas = document.createElement("canvas");
  canvas.width = left + cw * (LAST_SLOT - FIRST_SLOT) + 10;
  canvas.height = top + ch * 7 + 40;
  const g = canvas.getContext("2d");
  g.fillStyle = "#fff";
  g.fillRect(0, 0, canvas.width, canvas.height);
  g.fillStyle = "#000091";
  g.font = "bold 18px sans-serif";
  g.fillText(`Calendrier de fréquentation du ${$("#from").value} au ${$("#to").value}`, 10, 24);
  g.font = "12px sans-serif";
  rows.forEach((tr, r) => {
    g.fillStyle = "#161616";
    g.fillText(tr.querySelector("th").textContent, 8, top + r * ch + 19);
    [...tr.querySelectorAll("td")].forEach((td, c) => {
      g.fillStyle = td.style.background;
      g.fillRect(left + c * cw, top + r * ch, cw - 1, ch - 1);
      g.fillStyle = td.style.color;
      g.fillText(td.textContent, left + c * cw + 4, top + r * ch + 19);
    });
  });
  g.fillStyle = "#555";
  [...table.querySelectorAll("tr")[0].querySelectorAll("th")].slice(1).forEach((th, c) => {
    if (c % 2 === 0) g.fillText(th.textContent, left + c * cw, top - 6);
  });
  const a = document.createElement("a");
  a.href = canvas.toDataURL("image/png");
  a.download = `frequentation-${$("#from").value}-${$("#to").value}.png`;
  a.click();
}

function renderDefinitions(defs) {
  const dl = $("#definitions");
  dl.replaceChildren();
  for (const text of Object.values(defs)) {
    const [term, ...rest] = text.split(" : ");
    dl.append(el("dt", {}, term), el("dd", {}, rest.join(" : ")));
  }
}

async function load() {
  const from = $("#from").value;
  const to = $("#to").value;
  const weeksFrom = isoDay(addDays(new Date(`${to}T12:00:00`), -7 * 8 + 1));
  const status = $("#status");
  status.className = "status";
  status.textContent = "Chargement…";
  try {
    const [report, affluence, weeks] = await Promise.all([
      getJSON(`/api/v1/engagement8?from=${from}&to=${to}`),
      getJSON(`/api/v1/affluence?from=${from}&to=${to}`),
      getJSON(`/api/v1/engagement8?by=week&from=${weeksFrom}&to=${to}`),
    ]);
    renderCards(report);
    renderWeeks(weeks, report.policy);
    renderHeatmap(affluence);
    renderDefinitions(report.definitions);
    status.textContent = `Période du ${from} au ${to} : ${nf0.format(report.total.received)} appels reçus.`;
    document.body.dataset.loaded = "true";
  } catch (err) {
    status.className = "status error";
    status.textContent = `Impossible de charger les chiffres : ${err.message}`;
  }
}

function setPeriod(from, to) {
  $("#from").value = isoDay(from);
  $("#to").value = isoDay(to);
  const url = new URL(window.location.href);
  url.searchParams.set("from", $("#from").value);
  url.searchParams.set("to", $("#to").value);
  window.history.replaceState(null, "", url);
  load();
}

document.addEventListener("DOMContentLoaded", () => {
  const params = new URLSearchParams(window.location.search);
  const [mon, sun] = lastWeek();
  $("#from").value = params.get("from") || isoDay(mon);
  $("#to").value = params.get("to") || isoDay(sun);
  $("#period").addEventListener("submit", (e) => {
    e.preventDefault();
    setPeriod(new Date(`${$("#from").value}T12:00:00`), new Date(`${$("#to").value}T12:00:00`));
  });
  $("#last-week").addEventListener("click", () => setPeriod(...lastWeek()));
  $("#last-30").addEventListener("click", () => setPeriod(addDays(new Date(), -29), new Date()));
  $("#download-heatmap").addEventListener("click", downloadHeatmap);
  showAccount();
  load();
});

const ROLES_FR = { admin: "administration", quality: "qualité", viewer: "lecture" };

async function showAccount() {
  const me = await getJSON("/api/v1/me").catch(() => null);
  if (!me || !me.email) return;
  const form = el(
    "form",
    { method: "post", action: "/deconnexion", class: "logout" },
    el("input", { type: "hidden", name: "csrf", value: me.csrf || "" }),
    el("button", { type: "submit" }, "Se déconnecter"),
  );
  $("#account").replaceChildren(
    el("span", { class: "who" }, `${me.email} (${ROLES_FR[me.role] || me.role})`),
    form,
  );
}
