"""Self-contained HTML: escaping, the page frame and its style (no script, no external resource)."""

from __future__ import annotations

import html
from typing import Any


def esc(text: Any) -> str:
    """HTML-escape anything that came from a results file (quotes too: it may land in an attribute)."""
    return html.escape("" if text is None else str(text), quote=True)


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:80em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:2px 6px;
font-size:0.85em}td{text-align:right}thead th{background:#eee}.noisy{background:#fff5d6}
.bad{color:#a00}.better{background:#dff5df}.worse{background:#f9dcdc}.note{color:#555;font-size:0.85em}
img{max-width:48%;margin:0.5%;border:1px solid #ddd}code{background:#f4f4f4}"""


def html_page(title: str, body: str, nav: str = "") -> str:
    """A whole self-contained page: inline CSS, no script, no external resource."""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            f"img-src 'self' data:; style-src 'unsafe-inline'\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>{nav}\n{body}\n</body></html>\n")
