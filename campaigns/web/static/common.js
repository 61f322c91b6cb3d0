// What the campaign pages share: the API (with the session's CSRF token), French formats,
// and the labels of states, half-days and moments.
"use strict";

const $ = (sel) => document.querySelector(sel);
const nf0 = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: 0 });
const nf1 = new Intl.NumberFormat("fr-FR", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const pct = (v) => (v === null || v === undefined ? "—" : `${nf0.format(100 * v)}\u202f%`);
const note = (v) => (v === null || v === undefined ? "—" : nf1.format(v));
const DAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"];
const STATES = { done: "réalisé", missed: "manqué", planned: "à venir", cancelled: "annulé" };
const HALVES = { morning: "matin", afternoon: "après-midi" };
const MOMENTS = { opening: "ouverture", closing: "fermeture", lunch: "pause de midi", core: "" };
let csrf = "";

// Instants come with the municipality's offset: show its local date and time, whatever the
// browser's own zone.
function localParts(iso) {
  const [date, rest] = iso.split("T");
  const [y, m, d] = date.split("-").map(Number);
  const weekday = (new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7;
  return { date, time: rest.slice(0, 5), weekday, label: `${DAYS[weekday]} ${d}/${String(m).padStart(2, "0")}/${y}` };
}

function when(iso) {
  const p = localParts(iso);
  return `${p.label} à ${p.time.replace(":", " h ")}`;
}

async function api(url, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (options.method && options.method !== "GET") headers["X-CSRF-Token"] = csrf;
  const resp = await fetch(url, { ...options, headers });
  if (resp.status === 401) {
    window.location.assign(`/connexion?suite=${encodeURIComponent(location.pathname + location.search)}`);
    throw new Error("session expirée");
  }
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const err = new Error(body.error || `erreur ${resp.status}`);
    err.problems = body.problems || [];
    err.field = body.field;
    err.reference = body.request_id; // also in the service's log: what to quote
    throw err;
  }
  return body;
}

async function whoAmI() {
  const me = await api("/api/v1/me");
  csrf = me.csrf || "";
  const box = $("#account");
  if (box) box.textContent = me.email ? `${me.email} (${me.role})` : me.role;
  return me;
}

function showError(target, err) {
  target.replaceChildren(el("strong", {}, err.message));
  if (err.problems && err.problems.length) {
    target.append(el("ul", {}, ...err.problems.map((p) => el("li", {}, p))));
  }
  if (err.reference) target.append(el("p", { class: "note" }, `Référence : ${err.reference}`));
  target.className = "status error";
}
