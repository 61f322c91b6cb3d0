// « Campagnes »: the list, and a new campaign planned (preview) or created from its file.
"use strict";

function row(c) {
  const link = el("a", { href: `/campagnes/${c.id}` }, c.name);
  return el("tr", { "data-campaign": c.id },
    el("td", {}, link),
    el("td", {}, `du ${c.starts_on} au ${c.ends_on}`),
    el("td", {}, `${c.grid.name} (v${c.grid.version})`),
    el("td", {}, nf0.format(c.calls)),
    el("td", { "data-figure": "done" }, nf0.format(c.done)),
    el("td", { "data-figure": "missed" }, nf0.format(c.missed)),
    el("td", {}, c.next_call_at ? when(c.next_call_at) : "—"),
    el("td", {}, c.status === "cancelled" ? "annulée" : "en cours"),
    el("td", {}, el("a", { href: `/campagnes/${c.id}/resultats` }, "Résultats")));
}

async function load() {
  const data = await api("/api/v1/campaigns");
  const body = $("#campaigns tbody");
  body.replaceChildren(...data.campaigns.map(row));
  $("#status").textContent = data.campaigns.length
    ? `${data.campaigns.length} campagne${data.campaigns.length > 1 ? "s" : ""}.`
    : "Aucune campagne pour l'instant : créez la première ci-dessous.";
  document.body.dataset.loaded = "true";
}

function showPlan(calls) {
  const table = $("#plan");
  const body = table.querySelector("tbody");
  body.replaceChildren(...calls.map((c) => {
    const p = localParts(c.scheduled_at);
    return el("tr", {},
      el("td", {}, p.label), el("td", {}, p.time), el("td", {}, c.service),
      el("td", {}, c.scenario || "—"), el("td", {}, c.evaluator),
      el("td", {}, [HALVES[c.half_day], MOMENTS[c.moment]].filter(Boolean).join(", ")));
  }));
  table.hidden = false;
}

async function submit(url) {
  const feedback = $("#feedback");
  feedback.className = "status";
  feedback.textContent = "Calcul du plan…";
  try {
    const body = await api(url, {
      method: "POST", headers: { "Content-Type": "application/toml" }, body: $("#source").value,
    });
    return body;
  } catch (err) {
    showError(feedback, err);
    $("#plan").hidden = true;
    return null;
  }
}

async function preview() {
  const plan = await submit("/api/v1/campaigns/plan");
  if (!plan) return;
  showPlan(plan.calls);
  $("#feedback").textContent = `${plan.count} appels planifiés (rien n'est enregistré).`
    + (plan.notes.length ? ` ${plan.notes.join(" ; ")}` : "");
}

async function create() {
  const campaign = await submit("/api/v1/campaigns");
  if (!campaign) return;
  window.location.assign(`/campagnes/${campaign.id}`);
}

$("#file").addEventListener("change", async (ev) => {
  const file = ev.target.files[0];
  if (file) $("#source").value = await file.text();
});
$("#preview").addEventListener("click", preview);
$("#create").addEventListener("click", create);
whoAmI().then(load).catch((err) => showError($("#status"), err));
