// One campaign: its figures, its plan as a calendar (weeks × days) and as a list, and the
// actions of the quality team (re-plan what is not done, cancel).
"use strict";

const ID = location.pathname.split("/")[2];
let calls = [];
let current = null;

function figure(label, value, name) {
  return el("div", { class: "figure", "data-figure": name }, el("strong", {}, value), el("small", {}, label));
}

function isoDay(d) {
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}-${String(d.getUTCDate()).padStart(2, "0")}`;
}

function callLink(c) {
  const p = localParts(c.scheduled_at);
  const who = c.evaluator_name.split(" ")[0];
  return el("a", { href: c.url, class: c.state, "data-call": c.id, title: `${c.service_name} — ${c.evaluator_name} — ${STATES[c.state]}` },
    `${p.time} ${c.service_name} · ${who}`);
}

function renderCalendar(camp, shown) {
  const box = $("#calendar");
  box.replaceChildren(el("div", { class: "head" }, "Semaine"), ...DAYS.map((d) => el("div", { class: "head" }, d)));
  const byDay = new Map();
  for (const c of shown) {
    const day = localParts(c.scheduled_at).date;
    if (!byDay.has(day)) byDay.set(day, []);
    byDay.get(day).push(c);
  }
  const [y, m, d] = camp.starts_on.split("-").map(Number);
  const start = new Date(Date.UTC(y, m - 1, d));
  start.setUTCDate(start.getUTCDate() - ((start.getUTCDay() + 6) % 7));
  const today = isoDay(new Date(Date.now() - new Date().getTimezoneOffset() * 60000));
  for (const day = new Date(start); isoDay(day) <= camp.ends_on; ) {
    box.append(el("div", { class: "week" }, `semaine du ${day.getUTCDate()}/${day.getUTCMonth() + 1}`));
    for (let i = 0; i < 7; i++) {
      const key = isoDay(day);
      const inside = key >= camp.starts_on && key <= camp.ends_on;
      const cell = el("div", { class: `day${key === today ? " today" : ""}`, "data-day": key },
        el("span", { class: "date" }, inside ? `${day.getUTCDate()}/${day.getUTCMonth() + 1}` : ""));
      for (const c of byDay.get(key) || []) cell.append(callLink(c));
      box.append(cell);
      day.setUTCDate(day.getUTCDate() + 1);
    }
  }
}

function renderList(shown) {
  $("#calls tbody").replaceChildren(...shown.map((c) => {
    const p = localParts(c.scheduled_at);
    return el("tr", { "data-call": c.id },
      el("td", {}, p.label), el("td", {}, p.time),
      el("td", {}, el("a", { href: c.url }, c.service_name)), el("td", {}, c.number),
      el("td", {}, c.scenario || "—"), el("td", {}, c.evaluator_name),
      el("td", {}, [HALVES[c.half_day], MOMENTS[c.moment]].filter(Boolean).join(", ")),
      el("td", {}, el("span", { class: `pill ${c.state}` }, STATES[c.state]),
        c.moved_from ? el("small", { title: c.moved_reason || "" }, ` reporté du ${localParts(c.moved_from).label}`) : ""),
      el("td", { "data-sheet": c.sheet ? c.sheet.outcome : "" }, sheetLabel(c)),
      el("td", {}, c.evaluation ? note(c.evaluation.score) : "—"));
  }));
}

// The call sheet e-mailed before a manual call (campaigns/runner.py): sent when, or why not;
// for an assisted call or a probe, how Twilio's call went.
function sheetLabel(c) {
  if (c.mode !== "manual") return c.run_outcome_label || (new Date(c.scheduled_at) > new Date() ? "à venir" : "—");
  if (!c.sheet) return new Date(c.scheduled_at) > new Date() ? "à venir" : "—";
  if (c.sheet.outcome === "sent") return `envoyée à ${localParts(c.sheet.at).time}`;
  return el("span", { title: c.sheet.outcome }, "non envoyée");
}

function filtered() {
  const s = $("#f-service").value, e = $("#f-evaluator").value;
  return calls.filter((c) => (!s || c.service === s) && (!e || c.evaluator === e));
}

function fillSelect(select, pairs) {
  select.replaceChildren(el("option", { value: "" }, "tous"), ...pairs.map(([v, l]) => el("option", { value: v }, l)));
}

async function load() {
  const camp = await api(`/api/v1/campaigns/${ID}`);
  calls = (await api(`/api/v1/campaigns/${ID}/calls`)).calls;
  document.title = `${camp.name} — Décroché`;
  $("#name").firstChild.textContent = `${camp.name} `;
  $("#period").textContent = `du ${camp.starts_on} au ${camp.ends_on} · grille ${camp.grid.name} v${camp.grid.version}`
    + (camp.status === "cancelled" ? " · campagne annulée" : "");
  const counts = { planned: 0, done: 0, missed: 0, cancelled: 0 };
  for (const c of calls) counts[c.state] += 1;
  $("#figures").replaceChildren(
    figure("appels prévus", nf0.format(calls.length), "calls"),
    figure("réalisés", nf0.format(counts.done), "done"),
    figure("à venir", nf0.format(counts.planned), "planned"),
    figure("manqués", nf0.format(counts.missed), "missed"));
  $("#results-link").href = `/campagnes/${ID}/resultats`;
  $("#csv").href = `/api/v1/campaigns/${ID}/calls?format=csv`;
  $("#ics").href = `/api/v1/campaigns/${ID}/calls?format=ics`;
  $("#notes").textContent = camp.notes.join(" ; ");
  $("#replan").disabled = $("#cancel").disabled = camp.status === "cancelled";
  fillSelect($("#f-service"), [...new Map(calls.map((c) => [c.service, c.service_name]))]);
  fillSelect($("#f-evaluator"), [...new Map(calls.map((c) => [c.evaluator, c.evaluator_name]))]);
  current = camp;
  render(camp);
  $("#status").textContent = `Plan n° ${camp.plan_revision}, ${calls.length} appels.`;
  document.body.dataset.loaded = "true";
  return camp;
}

function render(camp) {
  const shown = filtered();
  renderCalendar(camp, shown);
  renderList(shown);
}

async function act(path, question) {
  if (!window.confirm(question)) return;
  try {
    await api(`/api/v1/campaigns/${ID}/${path}`, { method: "POST" });
    await load();
  } catch (err) {
    showError($("#status"), err);
  }
}

$("#f-service").addEventListener("change", () => render(current));
$("#f-evaluator").addEventListener("change", () => render(current));
$("#replan").addEventListener("click", () => act("replan",
  "Re-planifier tous les appels qui ne sont pas encore réalisés ? Les évaluateurs devront reprendre leur agenda."));
$("#cancel").addEventListener("click", () => act("cancel",
  "Annuler la campagne ? Les appels non réalisés seront annulés ; les évaluations restent."));
whoAmI().then(load).catch((err) => showError($("#status"), err));
