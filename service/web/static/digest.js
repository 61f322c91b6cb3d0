// « Synthèse hebdomadaire »: the digest of a week as a recipient would see it, and its sending.
"use strict";

const STATES = {
  pending: "en attente",
  sending: "en cours (ou interrompu)",
  sent: "envoyé",
  failed: "abandonné après plusieurs essais",
  unknown: "incertain : peut-être parti, non renvoyé",
};
const when = (iso) =>
  iso ? new Date(iso).toLocaleString("fr-FR", { weekday: "long", day: "numeric", month: "long", hour: "2-digit", minute: "2-digit" }) : "—";

function stateText(d) {
  if (d.state === "pending" && d.attempts > 0) return `nouvelle tentative ${when(d.next_attempt_at)}`;
  return STATES[d.state] || d.state;
}

const day = (iso) => new Date(`${iso}T12:00:00`).toLocaleDateString("fr-FR", { day: "numeric", month: "long", year: "numeric" });

function isoWeekOf(date) {
  const d = new Date(Date.UTC(date.getFullYear(), date.getMonth(), date.getDate()));
  const day = d.getUTCDay() || 7;
  d.setUTCDate(d.getUTCDate() + 4 - day);
  const year = d.getUTCFullYear();
  const week = Math.ceil(((d - Date.UTC(year, 0, 1)) / 86400000 + 1) / 7);
  return `${year}-W${String(week).padStart(2, "0")}`;
}

async function load() {
  const status = document.getElementById("status");
  const week = document.getElementById("week").value;
  const who = document.getElementById("for").value;
  status.textContent = "Chargement…";
  const resp = await fetch(`/api/v1/digest?week=${encodeURIComponent(week)}`, { headers: { Accept: "application/json" } });
  if (resp.status === 401) { location.href = `/connexion?suite=${encodeURIComponent(location.pathname)}`; return; }
  if (!resp.ok) {
    const err = await resp.json().catch(() => ({}));
    const ref = err.request_id ? ` Référence : ${err.request_id}.` : "";
    status.textContent = `Impossible de préparer la synthèse : ${err.error || resp.status}.${ref}`;
    return;
  }
  const data = await resp.json();
  const select = document.getElementById("for");
  if (select.options.length === 1) {
    for (const r of data.recipients) {
      const label = r.services.length ? `${r.address} (${r.services.join(", ")} en tête)` : r.address;
      select.append(el("option", { value: r.address }, label));
    }
    select.value = who;
  }
  const sent = new Map(data.deliveries.map((d) => [d.recipient, d]));
  const body = document.querySelector("#deliveries tbody");
  body.replaceChildren();
  for (const r of data.recipients) {
    const d = sent.get(r.address);
    body.append(el("tr", { class: d ? `state-${d.state}` : "" },
      el("td", {}, r.address),
      el("td", {}, r.services.join(", ") || "tous"),
      el("td", {}, d ? stateText(d) : "pas encore"),
      el("td", {}, d ? String(d.attempts) : "0"),
      el("td", {}, d ? when(d.sent_at) : "—"),
      el("td", {}, (d && d.error) || ""),
    ));
  }
  document.getElementById("send-at").textContent =
    `Envoi prévu ${when(data.send_at)} (heure locale). ${data.recipients.length ? "" : "Aucun destinataire configuré ([digest] recipients)."}`;
  const frame = document.getElementById("preview");
  frame.src = `/api/v1/digest/preview?week=${encodeURIComponent(week)}${who ? `&for=${encodeURIComponent(who)}` : ""}`;
  status.textContent = `${data.headline} — semaine ${data.week}, du ${day(data.period.from)} au ${day(data.period.to)}.`;
  document.body.dataset.loaded = "true";
}

document.addEventListener("DOMContentLoaded", () => {
  const params = new URLSearchParams(location.search);
  const last = new Date();
  last.setDate(last.getDate() - 7);
  document.getElementById("week").value = params.get("semaine") || isoWeekOf(last);
  document.getElementById("choice").addEventListener("submit", (e) => { e.preventDefault(); load(); });
  load();
});
