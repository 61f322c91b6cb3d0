// The wall: one tile per service, fed by server-sent events (/api/v1/wall/stream).
// The longest wait counts up here, between snapshots, from the server's own figure, so a
// screen with a wrong clock still shows the right wait. No caller number ever reaches it.
"use strict";

const token = new URLSearchParams(location.search).get("token");
const withToken = (path) => (token ? `${path}?token=${encodeURIComponent(token)}` : path);
const pct = (v) => (v === null || v === undefined ? "—" : `${Math.round(v * 100)} %`);
const LABELS = { green: "Objectifs tenus", amber: "À surveiller", red: "Alerte", closed: "Fermé" };

let snapshot = null;
let receivedAt = 0;
let lastMessage = 0;
let source = null;

function duration(s) {
  if (s === null || s === undefined) return "—";
  const total = Math.max(0, Math.floor(s));
  const m = Math.floor(total / 60);
  const r = String(total % 60).padStart(2, "0");
  return m ? `${m} min ${r}` : `${total} s`;
}

// Same rule as the server (service/wall/rules.py), with the wait as it is now.
function colour(tile, wait) {
  const t = tile.targets;
  const gaps = [];
  if (tile.today.answer_rate !== null) gaps.push(t.target_answer_rate - tile.today.answer_rate);
  if (tile.today.service_level !== null) gaps.push(t.target_service_level - tile.today.service_level);
  const w = wait || 0;
  if (gaps.some((g) => g >= 0.1 - 1e-9) || w > 2 * t.answer_within_s) return "red";
  if (gaps.some((g) => g > 0) || w > t.answer_within_s) return "amber";
  return "green";
}

function liveWait(tile) {
  if (tile.longest_wait_s === null) return null;
  return tile.longest_wait_s + (Date.now() - receivedAt) / 1000;
}

function renderTile(tile) {
  const wait = liveWait(tile);
  const state = colour(tile, wait);
  const node = el("section", {
    class: `tile ${state}${tile.open_now ? "" : " closed"}`,
    "data-service": tile.service,
    "data-status": state,
  });
  const stateText = tile.open_now ? LABELS[state] : `${LABELS.closed} · ${LABELS[state]}`;
  node.append(
    el("h2", { title: tile.name }, tile.name),
    el("div", { class: "state" }, stateText),
    el(
      "div",
      { class: "now" },
      el("div", {}, el("span", { class: "big waiting" }, String(tile.waiting)), el("span", { class: "label" }, "en attente")),
      el("div", {}, el("span", { class: "big longest" }, duration(wait)), el("span", { class: "label" }, "attente la plus longue")),
    ),
    el(
      "dl",
      {},
      el("dt", {}, "Taux de décroché"), el("dt", {}, "Niveau de service"), el("dt", {}, "Reçus"),
      el("dd", { class: "rate" }, pct(tile.today.answer_rate)),
      el("dd", {}, pct(tile.today.service_level)),
      el("dd", { class: "received" }, String(tile.today.received)),
      el("dt", {}, "Perdus"), el("dt", {}, "En conversation"), el("dt", {}, "Rappels à faire"),
      el("dd", { class: "lost" }, String(tile.today.lost)),
      el("dd", {}, String(tile.in_conversation)),
      el("dd", { class: "callbacks" }, String(tile.callbacks)),
    ),
  );
  return node;
}

// Tiles read best a little wider than tall; below this height they are unreadable.
const TILE_RATIO = 1.5;
const MIN_TILE_PX = 220;

// The column count that gives the largest tiles for this screen, all of them visible.
function layout() {
  const main = document.getElementById("tiles");
  const n = snapshot ? snapshot.services.length : 0;
  if (!n) return;
  const gap = parseFloat(getComputedStyle(main).rowGap) || 0;
  const width = main.clientWidth - gap;
  const height = main.clientHeight - gap;
  let best = { size: -1, cols: 1, rows: n, height: 0 };
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    const w = width / cols - gap;
    const h = height / rows - gap;
    const size = Math.min(w, h * TILE_RATIO);
    if (size > best.size) best = { size, cols, rows, height: h };
  }
  main.classList.toggle("scroll", best.height < MIN_TILE_PX);
  main.style.setProperty("--cols", String(best.cols));
  main.style.setProperty("--rows", String(best.rows));
}

function render() {
  if (!snapshot) return;
  document.getElementById("title").textContent = `Accueil téléphonique — ${snapshot.municipality}`;
  const total = snapshot.total;
  const summary = document.getElementById("summary");
  summary.replaceChildren(
    el("strong", {}, String(total.waiting)), " en attente · ",
    el("strong", {}, pct(total.today.answer_rate)), " décrochés aujourd'hui · ",
    el("strong", {}, String(total.callbacks)), " rappels à faire",
  );
  document.getElementById("tiles").replaceChildren(...snapshot.services.map(renderTile));
  layout();
  document.getElementById("rule").textContent = snapshot.rule;
}

function tick() {
  const now = new Date();
  document.getElementById("clock").textContent = now.toLocaleTimeString("fr-FR", {
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZone: snapshot ? snapshot.timezone : undefined,
  });
  // Without a word from the server for 40 s (it pings every 15 s), the link is lost.
  const note = document.getElementById("lost");
  if (lastMessage && Date.now() - lastMessage > 40000 && note.textContent !== REVOKED_TEXT) {
    lost(true);
  }
  render();
}

const LOST_TEXT = "Connexion perdue — reconnexion en cours…";
const REVOKED_TEXT =
  "Accès retiré : ce lien d'écran n'est plus valable. Demandez un nouveau lien à votre administrateur.";

function lost(isLost, text = LOST_TEXT) {
  const note = document.getElementById("lost");
  note.textContent = text;
  note.hidden = !isLost;
  document.body.classList.toggle("offline", isLost);
}

// After the stream closed: a revoked link, a disabled account or a session that ended gets
// 401/403 here (EventSource cannot tell); then say so instead of « reconnexion en cours ».
async function reconnect() {
  try {
    const resp = await fetch(withToken("/api/v1/wall"), { credentials: "same-origin" });
    if (resp.status === 401 || resp.status === 403) {
      if (!token) {
        window.location.assign("/connexion?suite=/mur");
        return;
      }
      lost(true, REVOKED_TEXT);
      // The figures on screen are no longer kept up to date: take them down, not leave them
      // looking live.
      snapshot = null;
      document.getElementById("summary").replaceChildren();
      document.getElementById("tiles").replaceChildren();
      setTimeout(reconnect, 60000); // a new link is another URL; this one may come back
      return;
    }
  } catch (_) {
    // The service is unreachable: try the stream again, as before.
  }
  connect();
}

function connect() {
  if (source) source.close();
  source = new EventSource(withToken("/api/v1/wall/stream"));
  source.addEventListener("snapshot", (e) => {
    snapshot = JSON.parse(e.data);
    receivedAt = lastMessage = Date.now();
    lost(false);
    render();
  });
  source.addEventListener("ping", () => { lastMessage = Date.now(); lost(false); });
  source.addEventListener("error", () => {
    // The browser retries by itself while the stream is merely cut; after an HTTP error
    // (the service restarting answers 503, a revoked link 401) it gives up: we look why.
    if (source.readyState === EventSource.CLOSED) setTimeout(reconnect, 3000);
    if (document.getElementById("lost").textContent !== REVOKED_TEXT) lost(true);
  });
}

window.addEventListener("resize", layout);
connect();
tick();
setInterval(tick, 1000);
