// « Rappels à faire »: the open call-backs, oldest first; « Fait » closes one by hand.
"use strict";

const when = (iso) =>
  new Date(iso).toLocaleString("fr-FR", { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
const secs = (s) => (s >= 60 ? `${Math.floor(s / 60)} min ${String(Math.round(s % 60)).padStart(2, "0")}` : `${Math.round(s)} s`);
let csrf = "";

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

async function load() {
  const status = document.getElementById("status");
  const resp = await fetch("/api/v1/callbacks", { headers: { Accept: "application/json" } });
  if (resp.status === 401) { location.href = `/connexion?suite=${encodeURIComponent(location.pathname)}`; return; }
  if (!resp.ok) { status.textContent = `Impossible de charger la liste des rappels.${reference(resp)}`; return; }
  const data = await resp.json();
  const body = document.querySelector("#list tbody");
  body.replaceChildren();
  for (const cb of data.callbacks) {
    const tr = document.createElement("tr");
    tr.dataset.id = cb.id;
    if (cb.overdue) tr.className = "overdue";
    tr.append(
      cell(cb.service_name),
      cell(cb.number || cb.caller || "—", "caller"),
      cell(when(cb.first_call_at)),
      cell(secs(cb.wait_s)),
      cell(String(cb.attempts)),
      cell(cb.due_by ? `${when(cb.due_by)}${cb.overdue ? " (en retard)" : ""}` : "—"),
    );
    const td = document.createElement("td");
    if (data.numbers_shown) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Fait";
      button.addEventListener("click", () => done(cb.id));
      td.append(button);
    }
    tr.append(td);
    body.append(tr);
  }
  status.textContent = data.count
    ? `${data.count} appelant${data.count > 1 ? "s" : ""} à rappeler.`
    : "Aucun rappel en attente.";
}

async function done(id) {
  const resp = await fetch(`/api/v1/callbacks/${id}/done`, { method: "POST", headers: { "X-CSRF-Token": csrf } });
  if (!resp.ok) {
    document.getElementById("status").textContent = `Le rappel n'a pas pu être marqué comme fait.${reference(resp)}`;
  }
  await load();
}

// The request's id (every answer's X-Request-Id, also in the service's log), to quote.
function reference(resp) {
  const id = resp.headers.get("X-Request-Id");
  return id ? ` Référence : ${id}.` : "";
}

fetch("/api/v1/me").then((r) => (r.ok ? r.json() : {})).then((me) => { csrf = me.csrf || ""; });
load();
setInterval(load, 30000);
