// « Mes appels »: the evaluator's own mystery calls, the next ones first, then the past.
"use strict";

const MODES_FR = { manual: "à passer vous-même", assisted: "assisté (Décroché vous appelle)", probe: "sonde automatique" };

async function load() {
  const data = await api("/api/v1/mystery-calls");
  const now = new Date().toISOString();
  const upcoming = data.calls.filter((c) => c.state === "planned" && new Date(c.scheduled_at).toISOString() >= now);
  const rest = data.calls.filter((c) => !upcoming.includes(c)).reverse();
  $("#calls tbody").replaceChildren(...[...upcoming, ...rest].map((c) => {
    const p = localParts(c.scheduled_at);
    const action = c.state === "done" ? "Voir l'évaluation" : c.state === "cancelled" ? "" : "Évaluer";
    return el("tr", { "data-call": c.id },
      el("td", {}, p.label), el("td", {}, p.time), el("td", {}, c.campaign_name), el("td", {}, c.service_name),
      el("td", {}, el("a", { href: `tel:${c.number}` }, c.number)),
      el("td", {}, el("span", { class: `pill ${c.state}` }, STATES[c.state]),
        c.moved_from ? el("small", { title: c.moved_reason || "" }, ` reporté du ${localParts(c.moved_from).label}`) : ""),
      el("td", { "data-run": c.run_outcome || "" }, c.run_outcome_label || MODES_FR[c.mode] || ""),
      el("td", {}, action ? el("a", { href: c.url }, action) : ""));
  }));
  $("#status").textContent = data.count
    ? `${upcoming.length} appel${upcoming.length > 1 ? "s" : ""} à venir, ${data.count} en tout.`
    : "Aucune campagne ne vous a confié d'appel.";
  document.body.dataset.loaded = "true";
}

whoAmI().then(load).catch((err) => showError($("#status"), err));
