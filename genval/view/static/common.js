// Shared by the browse and rate pages: escaping, word differences, JSON with per-field differences.
"use strict";

function esc(text) {
  const entity = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"};
  return String(text == null ? "" : text).replace(/[&<>"]/g, c => entity[c]);
}

async function getJSON(url, options) {
  const response = await fetch(url, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

// The words of `text` not in its longest common subsequence with `other`, marked (word-level diff, LCS):
// a word `other` also has outside the subsequence is the same word in another place, marked as moved;
// only the rest differs. Past 4 million cells the table would be too slow to fill: the text is shown
// unmarked, and says so.
function wordDiff(text, other) {
  if (text == null) return "";
  const a = String(text).split(/(\s+)/), b = other == null ? [] : String(other).split(/(\s+)/);
  const wa = a.filter((_, i) => i % 2 === 0), wb = b.filter((_, i) => i % 2 === 0);
  const n = wa.length, m = wb.length;
  if (other == null || n * m > 4e6)
    return esc(text) + (other != null ? '<div class="muted">(too long to compare)</div>' : "");
  const table = Array.from({length: n + 1}, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      table[i][j] = wa[i] === wb[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
  const keep = new Array(n).fill(false), kept = new Array(m).fill(false);
  for (let i = 0, j = 0; i < n && j < m;) {
    if (wa[i] === wb[j]) { keep[i] = true; kept[j] = true; i++; j++; }
    else if (table[i + 1][j] >= table[i][j + 1]) i++; else j++;
  }
  const elsewhere = new Map();  // the other text's words outside the subsequence, counted
  wb.forEach((w, j) => { if (!kept[j] && w !== "") elsewhere.set(w, (elsewhere.get(w) || 0) + 1); });
  return a.map((part, k) => {
    if (k % 2 === 1 || keep[k / 2] || part === "") return esc(part);
    const left = elsewhere.get(part) || 0;
    if (left) {
      elsewhere.set(part, left - 1);
      return `<span class="moved" title="moved: the other text has it elsewhere">${esc(part)}</span>`;
    }
    return `<span class="diff">${esc(part)}</span>`;
  }).join("");
}

function parseObject(text) {
  if (typeof text !== "string") return undefined;
  const t = text.trim();
  if (!t.startsWith("{") && !t.startsWith("[")) return undefined;
  try { return JSON.parse(t); } catch (e) { return undefined; }
}

// JSON pretty-printed, each value that differs from `other` at the same path marked.
function jsonDiff(value, other, indent = "") {
  const inner = indent + "  ";
  const same = other !== undefined && JSON.stringify(value) === JSON.stringify(other);
  if (value !== null && typeof value === "object") {
    const isArray = Array.isArray(value), keys = Object.keys(value);
    if (!keys.length) return isArray ? "[]" : "{}";
    const lines = keys.map(k => {
      const sub = other !== null && typeof other === "object" && other !== undefined ? other[k] : undefined;
      const missing = other === undefined || other === null || typeof other !== "object" || !(k in other);
      let body = jsonDiff(value[k], missing ? undefined : sub, inner);
      if (missing) body = `<span class="field-diff">${body}</span>`;
      return inner + (isArray ? "" : esc(JSON.stringify(k)) + ": ") + body;
    });
    return (isArray ? "[" : "{") + "\n" + lines.join(",\n") + "\n" + indent + (isArray ? "]" : "}");
  }
  const shown = esc(JSON.stringify(value));
  return same ? shown : `<span class="field-diff">${shown}</span>`;
}

// A text as HTML against the text it is compared with: JSON field by field when both are JSON, else word by word.
function compared(text, other) {
  const a = parseObject(text), b = parseObject(other);
  if (a !== undefined && (b !== undefined || other == null))
    return `<pre class="json">${jsonDiff(a, b === undefined ? a : b)}</pre>`;
  return `<div class="text">${wordDiff(text, other)}</div>`;
}
