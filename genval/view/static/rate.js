// Rate: one blind item at a time, a key per verdict, each rating POSTed (and so written) as it is given.
"use strict";

const annotator = new URLSearchParams(location.search).get("annotator") || "";
let current = null;

function keyOf(scale, k) {
  // An ordinal scale of single digits is rated by its own digits; otherwise the verdicts are numbered 1, 2, ...
  const digits = scale.kind === "ordinal" && scale.values.every(v => v >= 0 && v <= 9);
  return digits ? String(scale.values[k]) : String(k + 1);
}

// The verdict in the pair's own order: on a choice scale the page's "A" is the role shown first.
function canonical(value, scale, order) {
  if (scale.kind !== "choice" || order === "ab") return value;
  const [a, b] = scale.values;
  return value === a ? b : value === b ? a : value;
}

function tableRows(head, rows) {
  return "<tr>" + head.map(h => `<th>${esc(h)}</th>`).join("") + "</tr>" +
    rows.map(r => "<tr>" + r.map(c => `<td>${esc(c)}</td>`).join("") + "</tr>").join("");
}

// Every annotator's count on the pair, then each two who share items: how many, raw agreement, Cohen's kappa.
function showAnnotators(state) {
  document.querySelector("#annotators tbody").innerHTML = state.annotators.length
    ? tableRows(["annotator", "items rated"], state.annotators.map(a => [a.annotator, a.rated]))
    : "<tr><td class=\"muted\">nobody has rated this pair yet</td></tr>";
  document.querySelector("#agreement tbody").innerHTML = state.agreement.length
    ? tableRows(["annotators", "shared items", "agreement", "Cohen's kappa"], state.agreement.map(a => [
      a.annotators.join(" & "), a.n, (a.agreement * 100).toFixed(1) + " %",
      a.kappa == null ? "–" : a.kappa.toFixed(3)]))
    : "<tr><td class=\"muted\">no items rated by two annotators yet</td></tr>";
}

function showScale(scale) {
  const anchors = scale.anchors || {};
  document.getElementById("scale").innerHTML = scale.values.map((v, k) =>
    `<button type="button" data-k="${k}"><kbd>${keyOf(scale, k)}</kbd> ${esc(v)}` +
    (anchors[v] ? ` <span class="muted">${esc(anchors[v])}</span>` : "") + "</button>").join("");
}

function show(state) {
  current = state;
  document.getElementById("who").textContent = `${state.annotator} · ${state.pair} · scale of judge ${state.judge}`;
  document.getElementById("progress").textContent = `${state.progress.done} / ${state.progress.n} rated`;
  document.getElementById("session").textContent = state.session.line;
  document.getElementById("guideline").textContent = state.guideline;
  document.getElementById("guideline-hash").textContent = state.guideline_hash.slice(0, 19);
  document.getElementById("undo").disabled = !state.can_undo;
  showAnnotators(state);
  const item = state.item;
  document.getElementById("item").hidden = !item;
  document.getElementById("done").hidden = !!item;
  if (!item) return;
  document.getElementById("input").textContent = item.input;
  document.getElementById("a").innerHTML = compared(item.a, item.b);
  document.getElementById("b").innerHTML = compared(item.b, item.a);
  showScale(state.scale);
  document.getElementById("note").value = "";
}

async function refresh() {
  try {
    show(await getJSON(`/api/rate/next?annotator=${encodeURIComponent(annotator)}`));
    document.getElementById("message").textContent = "";
  } catch (e) { document.getElementById("message").textContent = e.message; }
}

function post(url, body) {
  return getJSON(url, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
}

let busy = false;
async function rate(k) {
  if (!current || !current.item || busy) return;
  busy = true;
  const scale = current.scale, value = scale.values[k];
  const body = {id: current.item.id, pair: current.pair, annotator, order: current.item.order};
  body[scale.field] = scale.field === "score" ? value : canonical(value, scale, current.item.order);
  const note = document.getElementById("note").value.trim();
  if (note) body.note = note;
  try {
    await post("/api/labels", body);
    await refresh();
  } catch (e) { document.getElementById("message").textContent = e.message; }
  busy = false;
}

async function undo() {
  if (busy) return;
  busy = true;
  try {
    await post("/api/labels/undo", {annotator});
    await refresh();
  } catch (e) { document.getElementById("message").textContent = e.message; }
  busy = false;
}

document.addEventListener("keydown", e => {
  const note = document.getElementById("note");
  if (document.activeElement === note) { if (e.key === "Escape") note.blur(); return; }
  if (e.ctrlKey || e.metaKey || e.altKey || !current) return;
  if (e.key === "u") { e.preventDefault(); undo(); return; }
  if (e.key === "n") { e.preventDefault(); note.focus(); return; }
  const k = current.scale.values.findIndex((_, i) => keyOf(current.scale, i) === e.key);
  if (k >= 0) { e.preventDefault(); rate(k); }
});
document.getElementById("scale").addEventListener("click", e => {
  const b = e.target.closest("button");
  if (b) rate(+b.dataset.k);
});
document.getElementById("undo").addEventListener("click", undo);
refresh();
