// report.html's behaviour: sortable tables and the per-example drill-down filters. No network, no library.
(function () {
  "use strict";

  function cellValue(cell) {
    var v = cell.getAttribute("data-value");
    if (v === null) v = cell.textContent.trim();
    var f = parseFloat(v);
    return isNaN(f) ? v.toLowerCase() : f;
  }

  function makeSortable(table) {
    var heads = table.querySelectorAll("thead th");
    heads.forEach(function (th, col) {
      th.addEventListener("click", function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var asc = th.getAttribute("data-dir") !== "asc";
        heads.forEach(function (h) { h.removeAttribute("data-dir"); });
        th.setAttribute("data-dir", asc ? "asc" : "desc");
        rows.sort(function (a, b) {
          var x = cellValue(a.cells[col]), y = cellValue(b.cells[col]);
          if (typeof x !== typeof y) { x = String(x); y = String(y); }
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }

  function text(s) { var d = document.createElement("div"); d.textContent = s == null ? "–" : s; return d.innerHTML; }

  function renderExamples(data) {
    var body = document.querySelector("#example-table tbody");
    var sliceSel = document.getElementById("filter-slice");
    var failSel = document.getElementById("filter-failure");
    var search = document.getElementById("filter-text");
    var count = document.getElementById("row-count");
    function matches(row) {
      var s = sliceSel.value, f = failSel.value, q = search.value.toLowerCase();
      if (s) { var kv = s.split("="); if (row.slices[kv[0]] !== kv.slice(1).join("=")) return false; }
      if (f === "__any") { if (!row.failures.length) return false; }
      else if (f && row.failures.indexOf(f) < 0) return false;
      if (q && (row.id + " " + (row.input || "") + " " + (row.student || "")).toLowerCase().indexOf(q) < 0) return false;
      return true;
    }
    function draw() {
      var shown = data.filter(matches);
      var html = shown.map(function (row) {
        var scores = Object.keys(row.scores).map(function (k) { return text(k) + ": " + row.scores[k]; }).join("<br>");
        var slices = Object.keys(row.slices).map(function (k) { return text(k + "=" + row.slices[k]); }).join("<br>");
        var fails = row.failures.map(function (f) { return '<span class="tag">' + text(f) + "</span>"; }).join(" ");
        var cell = function (html) { return '<td class="text"><div class="cell clamp">' + html + "</div></td>"; };
        return "<tr><td>" + text(row.id) + "</td>" + cell(text(row.input)) + cell(text(row.teacher)) +
          cell(text(row.student)) + cell(text(row.reference)) + '<td class="scores">' + scores + "</td><td>" +
          text(row.verdict) + "</td><td>" + slices + "</td><td>" + fails + "</td></tr>";
      });
      body.innerHTML = html.join("");
      // A text longer than its 8 lines gets a button that opens the rest in place (no scrolling inside a cell).
      body.querySelectorAll(".cell.clamp").forEach(function (el) {
        if (el.scrollHeight <= el.clientHeight + 1) return;
        var more = document.createElement("button");
        more.className = "more";
        more.textContent = "show all";
        more.addEventListener("click", function () {
          var open = el.classList.toggle("open");
          more.textContent = open ? "show less" : "show all";
        });
        el.parentNode.appendChild(more);
      });
      count.textContent = shown.length + " of " + data.length + " examples";
    }
    [sliceSel, failSel].forEach(function (el) { el.addEventListener("change", draw); });
    search.addEventListener("input", draw);
    draw();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table.sortable").forEach(makeSortable);
    var node = document.getElementById("example-data");
    if (node) renderExamples(JSON.parse(node.textContent));
  });
})();
// A "show them below" link sets the drill-down's filters to the examples behind a rule or diagnosis.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("a.drill").forEach(function (a) {
    a.addEventListener("click", function () {
      var pairs = [["filter-slice", a.getAttribute("data-slice")], ["filter-failure", a.getAttribute("data-failure")]];
      pairs.forEach(function (p) {
        var el = document.getElementById(p[0]);
        if (!el) return;
        var wanted = p[1] || "";
        el.value = Array.prototype.some.call(el.options, function (o) { return o.value === wanted; }) ? wanted : "";
        el.dispatchEvent(new Event("change"));
      });
    });
  });
});
