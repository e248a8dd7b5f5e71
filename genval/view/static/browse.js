// Browse: the filter lives in the page's address (genval/viewfilter.py's syntax); each change asks the API for a page.
"use strict";

const KEYS = ["slice", "pair", "metric", "min", "max", "judge", "verdict", "diagnosis", "flag", "q", "sort", "order"];
const LIMIT = 50;
const state = {run: null, offset: 0, items: [], total: 0};
const form = document.getElementById("filters");

function terms() {
  const out = new URLSearchParams();
  for (const key of KEYS) { const v = form.elements[key].value; if (v !== "") out.set(key, v); }
  return out;
}

function options(select, values) {
  for (const v of values) {
    const [value, text] = Array.isArray(v) ? v : [v, v];
    const o = document.createElement("option"); o.value = value; o.textContent = text; select.appendChild(o);
  }
}

function setUp(run) {
  state.run = run;
  document.getElementById("run-name").textContent = run.name;
  document.getElementById("run-size").textContent = `${run.n} examples · ${run.roles.join(", ")}`;
  options(form.elements.slice, Object.entries(run.slices).flatMap(([f, vs]) => vs.map(v => `${f}=${v}`)));
  options(form.elements.pair, [...run.pairs, ...run.roles.filter(r => !run.pairs.includes(r))]);
  options(form.elements.metric, run.metrics);
  options(form.elements.sort, run.metrics);
  options(form.elements.judge, [...new Set(run.judges.map(j => j.judge))]);
  options(form.elements.verdict, [...new Set(run.judges.flatMap(j => j.verdicts))]);
  options(form.elements.diagnosis, run.diagnoses.map(d => [d.kind, d.kind.replace(/_/g, " ")]));
  const given = new URLSearchParams(location.search);
  for (const key of KEYS) {
    if (!given.has(key)) continue;
    const el = form.elements[key], v = given.get(key);
    if (el.tagName === "SELECT" && ![...el.options].some(o => o.value === v)) options(el, [v]);
    el.value = v;
  }
}

function scoreOf(item) {
  const metric = form.elements.sort.value || form.elements.metric.value;
  if (!metric) return "";
  const pair = form.elements.pair.value;
  const pairs = pair ? [pair]
    : Object.keys(item.scores).sort((a, b) => (b.includes("~teacher") - a.includes("~teacher")));
  for (const p of pairs) {
    if (item.scores[p] && metric in item.scores[p])
      return `${item.scores[p][metric].toFixed(3)} <span class="muted">${esc(p)}</span>`;
  }
  return "–";
}

function row(item, k) {
  const flags = Object.entries(item.flags).filter(([, on]) => on)
    .map(([f]) => `<span class="flag">${f.replace(/_/g, " ")}</span>`).join("");
  const judged = item.judgments.map(j => esc(j.verdict == null ? "(unread)" : j.verdict)).join(", ");
  const student = (item.outputs.student || Object.values(item.outputs).find((_, i) => i > 0) || {}).text || "";
  const slices = Object.entries(item.slices).map(([f, v]) => `${f}=${v}`).join(" ");
  return `<tr data-k="${k}"><td>${esc(item.id)}</td><td class="muted">${esc(slices)}</td>` +
    `<td>${flags}</td><td>${judged}</td><td>${scoreOf(item)}</td><td>${esc(student.slice(0, 90))}</td></tr>`;
}

async function load() {
  const query = terms();
  history.replaceState(null, "", query.toString() ? `?${query}` : location.pathname);
  query.set("offset", state.offset); query.set("limit", LIMIT);
  const message = document.getElementById("message");
  try {
    const page = await getJSON(`/api/examples?${query}`);
    message.textContent = "";
    state.items = page.items; state.total = page.total;
  } catch (e) {
    message.textContent = e.message; state.items = []; state.total = 0;
  }
  document.querySelector("#examples tbody").innerHTML = state.items.map(row).join("");
  const last = Math.min(state.offset + state.items.length, state.total);
  document.getElementById("count").textContent =
    state.total ? `${state.offset + 1}–${last} of ${state.total} examples` : "0 examples";
  document.getElementById("prev").disabled = state.offset === 0;
  document.getElementById("next").disabled = last >= state.total;
  document.getElementById("detail").hidden = true;
}

function sides(item) {
  const roles = state.run.roles.filter(r => r in item.outputs);
  const base = item.outputs.teacher ? item.outputs.teacher.text : item.reference;
  const firstOther = roles.find(r => r !== "teacher");
  const cols = [];
  if (item.reference != null) cols.push(["reference", item.reference, base, null]);
  for (const role of roles) {
    const out = item.outputs[role];
    const against = role === "teacher" ? (firstOther ? item.outputs[firstOther].text : null) : base;
    cols.push([role, out.text, against, out]);
  }
  return cols.map(([name, text, against, out]) => `<div class="side" data-role="${esc(name)}"><h3>${esc(name)}</h3>` +
    (out && out.error ? `<div class="error">failed: ${esc(out.error)}</div>` : compared(text, against)) +
    (out && out.label_probs ? `<div class="muted">label probabilities: ${esc(topProbs(out.label_probs))}</div>` : "") +
    (out && out.latency_s != null ? `<div class="muted">latency ${out.latency_s.toFixed(3)} s</div>` : "") +
    "</div>").join("");
}

// The four likeliest labels with their probabilities, likeliest first.
function topProbs(probs) {
  return Object.entries(probs).sort((a, b) => b[1] - a[1]).slice(0, 4)
    .map(([l, p]) => `${l} ${(+p).toFixed(3)}`).join(", ");
}

function open(k) {
  const item = state.items[k];
  document.querySelectorAll("#examples tbody tr").forEach(tr => tr.classList.toggle("open", +tr.dataset.k === k));
  const detailOf = (pair, m) => item.details[pair] && item.details[pair][m]
    ? ` <span class="muted">(${esc(item.details[pair][m])})</span>` : "";
  const scoreRows = Object.entries(item.scores).map(([pair, ms]) => `<tr><th>${esc(pair)}</th><td>${Object.entries(ms)
    .map(([m, v]) => `${esc(m)} <b>${v.toFixed(3)}</b>` + detailOf(pair, m)).join(" · ")}</td></tr>`).join("");
  const judged = item.judgments.map(j => `<div class="judgment"><b>${esc(j.judge)}</b> on ${esc(j.pair)}: ` +
    `<b class="verdict">${esc(j.verdict == null ? "unreadable" : j.verdict)}</b>` +
    (j.problem ? ` <span class="error">${esc(j.problem)}</span>` : "") +
    `<details><summary>judge's raw answer</summary><pre class="raw">${esc(j.raw)}</pre></details></div>`).join("");
  const detail = document.getElementById("detail");
  detail.innerHTML = `<h2>${esc(item.id)}</h2><h3>input</h3><div class="text" id="input">${esc(item.input)}</div>` +
    `<h3>outputs</h3><div class="sides">${sides(item)}</div>` +
    `<h3>scores</h3><table class="scores">${scoreRows}</table>` + (judged ? `<h3>judges</h3>${judged}` : "");
  detail.hidden = false;
  detail.scrollIntoView();
}

form.addEventListener("change", () => { state.offset = 0; load(); });
form.addEventListener("submit", e => { e.preventDefault(); state.offset = 0; load(); });
document.getElementById("prev").addEventListener("click", () => {
  state.offset = Math.max(0, state.offset - LIMIT);
  load();
});
document.getElementById("next").addEventListener("click", () => { state.offset += LIMIT; load(); });
document.querySelector("#examples tbody").addEventListener("click", e => {
  const tr = e.target.closest("tr");
  if (tr) open(+tr.dataset.k);
});

getJSON("/api/run").then(run => { setUp(run); return load(); })
  .catch(e => { document.getElementById("message").textContent = e.message; });
