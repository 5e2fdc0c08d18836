"""Self-contained HTML: escaping, the page frame, its style and its one script.

No external resource and no inline script but one: SORT_SCRIPT, which makes every table sortable
by a click on (or Enter on) a column header. The page's Content-Security-Policy allows exactly
that script by its SHA-256 hash (CSP level 2 `script-src 'sha256-...'`) and nothing else: no
other inline script, no event-handler attribute, no script from anywhere, no network. A page
without JavaScript reads the same, unsorted. A cell sorts by its `data-sort` attribute where it
has one (the number behind "834.5 bf16 (84%)", an ISO date), else by its leading number, else
by its text; empty cells and "—" sort last either way.

Every table sits in its own scroll box (`<div class="wide">`, overflow-x auto, as wide as the
window less the page's margins), so a table wider than the window scrolls inside it and the page
never does; the table is as wide as its content (max-content), a cell wrapping only past 16em
and a header past 8em, so figures stay on one line and a long text cell wraps to a few lines
instead of every column being squeezed to its longest word.
"""

from __future__ import annotations

import base64
import hashlib
import html
from typing import Any


def esc(text: Any) -> str:
    """HTML-escape anything that came from a results file (quotes too: it may land in an attribute)."""
    return html.escape("" if text is None else str(text), quote=True)


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:80em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:2px 6px;
font-size:0.85em}td{text-align:right}thead th{background:#eee}.noisy{background:#fff5d6}
.bad{color:#a00}.better{background:#dff5df}.worse{background:#f9dcdc}.note{color:#555;font-size:0.85em}
img{display:block;width:64em;max-width:100%;margin:0.5em 0;border:1px solid #ddd}code{background:#f4f4f4}
td:first-child{text-align:left}
thead th[tabindex]{cursor:pointer}thead th[aria-sort=ascending]::after{content:" \\25B2"}
thead th[aria-sort=descending]::after{content:" \\25BC"}
.wide{overflow-x:auto;width:calc(100vw - 4em)}.wide table{width:max-content}.wide td{max-width:16em}
.wide thead th{max-width:8em}
.measured{background:#eef6ff}.published{background:#f6f0ff}.spec{background:#f7f7f7}
.facts td,.facts th{text-align:left}"""

# Kept small and dependency-free; its hash goes into every page's CSP (SCRIPT_HASH).
SORT_SCRIPT = """(function () {
  function key(row, i) {
    var c = row.cells[i];
    if (!c) return [2, ""];
    var s = c.getAttribute("data-sort");
    if (s === null) s = c.textContent.trim();
    if (s === "" || s === "\\u2014") return [2, ""];
    var m = /^[-+]?\\$?\\d[\\d,]*(\\.\\d+)?(e[-+]?\\d+)?(?=$|[\\s%x\\u00d7(~])/i.exec(s);
    return m ? [0, parseFloat(m[0].replace(/[$,]/g, ""))] : [1, s.toLowerCase()];
  }
  function sortBy(table, th, i) {
    var asc = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.map.call(body.rows, function (r, n) { return [key(r, i), n, r]; });
    rows.sort(function (a, b) {
      if (a[0][0] !== b[0][0]) return a[0][0] - b[0][0];
      if (a[0][0] === 2) return a[1] - b[1];
      var d = a[0][1] < b[0][1] ? -1 : a[0][1] > b[0][1] ? 1 : 0;
      return (asc ? d : -d) || a[1] - b[1];
    });
    rows.forEach(function (r) { body.appendChild(r[2]); });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table"), function (table) {
    if (!table.tHead || !table.tBodies.length || table.tHead.rows.length !== 1) return;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.tabIndex = 0;
      th.title = "sort by this column";
      th.addEventListener("click", function () { sortBy(table, th, i); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(table, th, i); }
      });
    });
  });
})();"""
SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SORT_SCRIPT.encode("utf-8")).digest()).decode("ascii")
CSP = (f"default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; script-src '{SCRIPT_HASH}'")


def html_page(title: str, body: str, nav: str = "") -> str:
    """A whole self-contained page: inline CSS, the sorting script allowed by its hash, no
    external resource."""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>{nav}\n{body}\n"
            f"<script>{SORT_SCRIPT}</script>\n</body></html>\n")
