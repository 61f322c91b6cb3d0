// The scoring page of one mystery call: the call and its scenario, the grid rendered item
// by item (N/A where the grid allows it), the evaluation saved or corrected, its history.
"use strict";

const CALL = location.pathname.split("/")[2];
let grid = null;

function radios(item, options, current) {
  const box = el("div", { class: "choices", role: "radiogroup", "aria-label": item.label });
  for (const [value, label] of options) {
    const input = el("input", { type: "radio", name: `a-${item.id}`, value });
    if (current !== undefined && String(current) === value) input.checked = true;
    box.append(el("label", {}, input, label));
  }
  return box;
}

function itemBlock(item, answer, remark) {
  const head = el("span", { class: "label" }, item.label);
  if (item.critical) head.append(" ", el("span", { class: "critical" }, "(éliminatoire)"));
  const block = el("div", { class: "item", "data-item": item.id, "data-kind": item.kind }, head);
  if (item.help) block.append(el("p", { class: "help" }, item.help));
  const na = item.na_allowed ? [["na", "Sans objet"]] : [];
  if (item.kind === "yes_no") block.append(radios(item, [["true", "Oui"], ["false", "Non"], ...na], answer));
  else if (item.kind === "scale") {
    const steps = [...Array(item.max + 1).keys()].map((v) => [String(v), `${v}`]);
    block.append(radios(item, [...steps, ...na], answer));
  } else if (item.kind === "choice") {
    block.append(radios(item, [...item.options.map((o) => [o.id, o.label]), ...na], answer));
  } else if (item.kind === "measured") {
    const input = el("input", { type: "number", min: "0", step: "1", name: `a-${item.id}`, "aria-label": `${item.label} (secondes)` });
    if (typeof answer === "number") input.value = String(answer);
    const row = el("div", { class: "choices" }, el("label", {}, input, ` secondes (seuil : ${nf0.format(item.threshold_s)} s)`));
    if (item.na_allowed) {
      const box = el("input", { type: "checkbox", name: `na-${item.id}` });
      box.checked = answer === "na";
      row.append(el("label", {}, box, "Sans objet"));
    }
    block.append(row);
  } else {
    const area = el("textarea", { name: `a-${item.id}`, "aria-label": item.label });
    area.value = answer || "";
    block.append(area);
    return block;
  }
  const input = el("input", { type: "text", name: `r-${item.id}`, placeholder: "Remarque (facultatif)", "aria-label": `Remarque : ${item.label}` });
  input.value = remark || "";
  block.append(el("div", { class: "remark" }, input));
  return block;
}

function renderGrid(g, evaluation) {
  const answers = evaluation ? evaluation.answers : {};
  const remarks = evaluation ? evaluation.comments : {};
  $("#grid-title").textContent = `Grille « ${g.name} » (version ${g.version}) — note sur ${nf0.format(g.scale)}, réussite à ${note(g.pass_mark)}`;
  $("#sections").replaceChildren(...g.sections.map((s) =>
    el("fieldset", { "data-section": s.id }, el("legend", {}, s.title),
      ...s.items.map((it) => itemBlock(it, answers[it.id], remarks[it.id])))));
  $("#comment").value = evaluation ? evaluation.comment : "";
}

function collect() {
  const answers = {}, comments = {};
  const form = $("#grid");
  for (const s of grid.sections) {
    for (const it of s.items) {
      const name = `a-${it.id}`;
      if (it.kind === "text") { answers[it.id] = form.elements[name].value; continue; }
      if (it.kind === "measured") {
        const na = form.elements[`na-${it.id}`];
        const v = form.elements[name].value;
        if (na && na.checked) answers[it.id] = "na";
        else if (v !== "") answers[it.id] = Number(v);
      } else {
        const checked = form.querySelector(`input[name="${name}"]:checked`);
        if (checked) {
          const v = checked.value;
          answers[it.id] = v === "na" ? "na" : it.kind === "yes_no" ? v === "true" : it.kind === "scale" ? Number(v) : v;
        }
      }
      const remark = form.elements[`r-${it.id}`];
      if (remark && remark.value.trim()) comments[it.id] = remark.value.trim();
    }
  }
  return { answers, comments, comment: $("#comment").value, reason: $("#reason").value };
}

function showResult(ev) {
  const passed = ev.passed;
  const failed = ev.critical_failed.length ? ` — critère éliminatoire échoué : ${ev.critical_failed.join(", ")}` : "";
  $("#result").replaceChildren(el("span", { class: `verdict ${passed ? "ok" : "ko"}`, "data-score": ev.score },
    `Note : ${note(ev.score)} / ${nf0.format(grid.scale)} — ${passed ? "appel réussi" : "appel non réussi"}${ev.excellent ? " (excellent)" : ""}${failed}`),
  el("span", {}, ` · version ${ev.revision}, enregistrée par ${ev.author}`));
}

async function loadHistory() {
  try {
    const ev = await api(`/api/v1/mystery-calls/${CALL}/evaluation`);
    const list = $("#history");
    list.replaceChildren(...ev.history.map((h) => el("li", {},
      `Version ${h.revision} : note ${note(h.score)}, par ${h.author} (${when(h.saved_at)}), corrigée par ${h.replaced_by}`
      + (h.reason ? ` — motif : ${h.reason}` : ""))));
    $("#history-box").hidden = ev.history.length === 0;
  } catch { /* no evaluation yet */ }
}

function setEditable(on) {
  for (const input of $("#grid").querySelectorAll("input, textarea, button[type=submit]")) input.disabled = !on;
}

// What Twilio did for an assisted call: the outcome, the ring time, the recording.
function showRun(run, dl, add) {
  add("outcome", "Issue de l'appel", run.outcome_label || (run.state === "ended" ? "terminé" : "en cours"));
  if (run.detail && run.outcome === "failed") add("detail", "Détail", run.detail);
  if (run.ring_seconds !== null) add("ring", "Sonnerie avant décroché", `${nf0.format(run.ring_seconds)} s (mesurée)`);
  if (run.recording) {
    add("recording", "Enregistrement", el("audio", { controls: "", preload: "none", src: run.recording.url }));
  } else if (run.recording_erased_at) {
    add("recording", "Enregistrement", `effacé le ${when(run.recording_erased_at)} (durée de conservation)`);
  }
}

async function load() {
  const call = await api(`/api/v1/mystery-calls/${CALL}`);
  grid = call.grid;
  document.title = `Appel mystère — ${call.service_name} — Décroché`;
  $("#subtitle").textContent = `${call.campaign_name} · ${call.service_name}`;
  $("#campaign-link").href = `/campagnes/${call.campaign}`;
  const dl = $("#context");
  const add = (name, term, value) => dl.append(el("dt", {}, term), el("dd", { "data-field": name }, value));
  dl.replaceChildren();
  add("service", "Service", call.service_name);
  add("number", "Numéro à appeler", el("a", { href: `tel:${call.number}` }, call.number));
  add("scheduled_at", "Quand", when(call.scheduled_at));
  add("evaluator", "Évaluateur", call.evaluator_name);
  add("state", "État", STATES[call.state]);
  if (call.scenario) {
    $("#scenario").hidden = false;
    $("#question").textContent = call.scenario.question;
    $("#expected").textContent = call.scenario.expected || "—";
  }
  if (call.run) showRun(call.run, dl, add);
  // An assisted call's measure pre-fills the grid until a person saves it.
  renderGrid(grid, call.evaluation || (call.run && Object.keys(call.run.prefill).length
    ? { answers: call.run.prefill, comments: {}, comment: "" } : null));
  const editable = call.evaluation ? call.can_correct : call.can_evaluate;
  setEditable(editable);
  $("#reason-box").hidden = !(call.evaluation && call.can_correct);
  $("#save").textContent = call.evaluation ? "Enregistrer la correction" : "Enregistrer l'évaluation";
  $("#missed").hidden = !call.can_mark_missed;
  if (call.evaluation) showResult(call.evaluation);
  $("#status").textContent = editable ? "" : call.evaluation
    ? "Cet appel est évalué ; seuls son auteur et l'équipe qualité peuvent corriger l'évaluation."
    : "Cet appel ne peut pas être évalué par vous.";
  $("#status").className = "status";
  await loadHistory();
  document.body.dataset.loaded = "true";
}

async function save(ev) {
  ev.preventDefault();
  for (const b of document.querySelectorAll(".item.invalid")) b.classList.remove("invalid");
  try {
    const saved = await api(`/api/v1/mystery-calls/${CALL}/evaluation`, {
      method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(collect()),
    });
    document.body.dataset.loaded = "false";
    await load();
    showResult(saved);
    $("#status").textContent = "Évaluation enregistrée.";
  } catch (err) {
    showError($("#status"), err);
    const id = (err.field || "").replace(/^answers\./, "");
    const block = document.querySelector(`.item[data-item="${CSS.escape(id)}"]`);
    if (block) { block.classList.add("invalid"); block.scrollIntoView({ block: "center" }); }
  }
}

async function missed() {
  const reason = window.prompt("Pourquoi l'appel n'a-t-il pas eu lieu ?", "");
  if (reason === null) return;
  try {
    await api(`/api/v1/mystery-calls/${CALL}/missed`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ reason }),
    });
    await load();
  } catch (err) { showError($("#status"), err); }
}

$("#grid").addEventListener("submit", save);
$("#missed").addEventListener("click", missed);
whoAmI().then(load).catch((err) => showError($("#status"), err));
