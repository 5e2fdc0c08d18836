"""Escaping for each output format, applied to every string that came from a results file or the
command line (a run id, a device or host name, an error message, a label).

Control characters are already shown rather than obeyed by the time text gets here: the store's
reader passes every string of a run folder through core/errors.printable (no terminal escape
sequence from a results file reaches a terminal, a Markdown file or a CSV). What is left is each
format's own syntax: HTML has html.esc (present/html.py); this module has Markdown, CSV and the
links of the README index.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any
from urllib.parse import quote

from harness.core.errors import printable

_OPENING_LT = re.compile(r"<(?=\S)")  # a `<` that could open a tag or an autolink
# A spreadsheet reads a cell starting with one of these as a formula (OWASP, "CSV Injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def md(text: Any) -> str:
    """Text for one Markdown table cell or list item, shown as written: one line, the table's `|`
    escaped, no raw HTML (`<` `>` as entities), and no inline link or image (`](` broken), so a
    planted `<script>`, `<img src=...>` or `[x](javascript:...)` stays text in any renderer.
    A `<` followed by a space or ending the text stays as written ("p < 1e-6"): every raw-HTML
    and autolink form of CommonMark (tag, `</`, `<!`, `<?`, `<scheme:`, `<a@b>`) has a non-space
    right after the `<`, so that one opens nothing, and a reader of the Markdown in a terminal
    sees `<`, not `&lt;`."""
    s = printable(str(text).replace("\r\n", " ").replace("\n", " ").replace("\r", " "))
    s = s.replace("\\", "\\\\").replace("|", "\\|").replace(">", "&gt;")
    return _OPENING_LT.sub("&lt;", s).replace("](", "]\\(")


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: a string starting like a formula gets a leading
    apostrophe (the cell then reads `'=1+1`, never runs it); numbers are left as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def relative_link(path: str) -> str:
    """A Markdown link target for a folder `path` relative to the page: percent-encoded and
    starting with `./`, so a folder named `javascript:alert(1)` is a relative path, not a scheme."""
    clean = posixpath.normpath(path.replace("\\", "/")).lstrip("/")
    return "./" if clean == "." else "./" + quote(clean, safe="/") + "/"
