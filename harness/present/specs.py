"""`gwbench specs`: the hardware table as tables, every figure with its source."""

from __future__ import annotations

import re
import textwrap
from typing import Any

from harness.core.specs import FIGURE_FIELDS, SYSTEM_FIGURES, Accelerator, Figure, HardwareTable, System
from harness.present.tables import format_table


def _v(fig: Figure | None) -> str | None:
    return None if fig is None else f"{fig.value:g}"


def overview(table: HardwareTable, fmt: str = "text", width: int | None = None) -> str:
    """All accelerators and systems, one row each (dense TFLOP/s). `width` (a terminal's): the
    names wrap to fit it."""
    acc_rows = [
        [a.name, a.vendor, a.year, a.status,
         *(_v(a.dense_tflops.get(t)) for t in ("bf16", "fp8", "fp4", "tf32")),
         _v(a.hbm_gb), _v(a.hbm_tbps), _v(a.tdp_w), table.systems[a.system].name if a.system else None]
        for a in table.accelerators.values()
    ]
    sys_rows = [
        [s.name, table.accelerators[s.accelerator].name, s.gpu_count, _value_text(s.power_kw),
         f"{s.watts_per_gpu:.0f}", _ratio(s, table.accelerators[s.accelerator]), s.status]
        for s in table.systems.values()
    ]
    head = "Accelerators (dense peaks, no sparsity; per package)"
    return "\n\n".join([
        head, format_table(["accelerator", "vendor", "year", "status", "bf16 TFLOP/s", "fp8", "fp4", "tf32",
                            "HBM GB", "HBM TB/s", "TDP W", "system"], acc_rows, fmt, width=width, wrap=(0, 11)),
        "Systems (rated maximum power)",
        format_table(["system", "accelerator", "GPUs", "power kW", "W per GPU", "x TDP", "status"],
                     sys_rows, fmt, width=width, wrap=(0, 1)),
        _fill(f"source of every figure: `gwbench specs NAME`; table: {table.path}", width),
    ])


def _fill(text: str, width: int | None) -> str:
    return text if width is None else textwrap.fill(text, width, break_long_words=False, break_on_hyphens=False)


def _value_text(f: Figure) -> str:
    if f.low is None and f.high is None:
        return f"{f.value:g}"
    end = lambda x: "?" if x is None else f"{x:g}"  # noqa: E731 - a range may be open on one side
    return f"{f.value:g} ({end(f.low)}-{end(f.high)})"


def _ratio(s: System, a: Accelerator) -> str | None:
    return f"{s.watts_per_gpu / a.tdp_w.value:.2f}" if a.tdp_w else None


def describe(entry: Accelerator | System, fmt: str = "text", width: int | None = None) -> str:
    """Every figure of one entry with its source and note. `width` (a terminal's): the source
    and note columns and the prose wrap at words to fit it."""
    rows: list[list[Any]] = []
    if isinstance(entry, Accelerator):
        facts = [("vendor", entry.vendor), ("year", entry.year), ("status", entry.status),
                 ("aliases", ", ".join(entry.aliases)), ("system", entry.system), ("note", entry.note)]
        figs = [(f"dense {k} TFLOP/s", f) for k, f in entry.dense_tflops.items()]
        figs += [(f"mamf-finder {k} TFLOP/s", f) for k, f in entry.mamf_tflops.items()]
        figs += [(k, getattr(entry, k)) for k in FIGURE_FIELDS if getattr(entry, k)]
    else:
        facts = [("accelerator", entry.accelerator), ("status", entry.status), ("note", entry.note)]
        figs = [("gpus", entry.gpus), ("power_kw", entry.power_kw)]
        figs += [(k, getattr(entry, k)) for k in SYSTEM_FIGURES if getattr(entry, k)]
    rows = [[k, _value_text(f), f.source, f.note or None] for k, f in figs]
    info = "; ".join(f"{k}: {v}" for k, v in facts if v not in (None, ""))
    legend = source_legend(entry)
    head = f"{entry.name} ({info})"
    if width is not None and fmt == "text":
        head = textwrap.fill(head, width, subsequent_indent="  ", break_on_hyphens=False)
        legend = legend and _fill(legend, width)
    return (head + "\n\n" + format_table(["figure", "value", "source", "note"], rows, fmt, width=width, wrap=(2, 3))
            + (f"\n\n{legend}" if legend else ""))


def source_legend(entry: Accelerator | System) -> str | None:
    """One line saying what the abbreviations in the entry's sources stand for (hardware.toml's
    header defines them) and how to read the sources; None when no source uses one."""
    cited = " ".join(f.source for f in _figures(entry))
    said = [text.format(key=entry.key) for abbr, text in ABBREVIATIONS if re.search(rf"\b{abbr}\b", cited)]
    return "; ".join(said) if said else None


# The short names hardware.toml's sources use (its header comment defines them).
ABBREVIATIONS = (("REF", "REF = docs/sources.md, the published sources (`gwbench specs {key} --sources` "
                         "prints its lines about this entry)"),
                 ("mamf", "mamf = mamf-finder's results (stas00/ml-engineering, compute/accelerator/README.md)"))


def sources_for(entry: Accelerator | System, text: str) -> str:
    """The parts of docs/sources.md (`text`) about one entry: under each section, every table row,
    list item or paragraph naming it, whole (a wrapped sentence is never cut at a line end), a
    table's header above its rows, and the section's own source notes (the paragraph opening
    "Sources:")."""
    names = {entry.name, entry.key, *getattr(entry, "aliases", ())}
    if isinstance(entry, System):
        names.add(entry.accelerator)
    words = {n.lower() for n in names if n} | {n.split(" (")[0].lower() for n in names if n}
    # A name as a word: "H200" in "8×H200" and "H100/H200", not in "GH200".
    named = re.compile("|".join(rf"(?<![a-z0-9]){re.escape(w)}(?![a-z0-9])" for w in sorted(words, key=len, reverse=True)))
    out: list[str] = []
    for head, paragraphs in _sections(text):
        picked = []
        for para in paragraphs:
            if para[0].startswith("|"):
                rows = [ln for ln in para[2:] if named.search(ln.lower())]
                if rows:
                    picked.append(para[:2] + rows)
                continue
            units = _units(para)
            hits = [ln for u in units if named.search(" ".join(u).lower()) for ln in u]
            if hits:
                picked.append(hits)
        if picked:
            notes = [p for p in paragraphs if p[0].startswith(("Sources:", "Source:")) and p not in picked]
            out.append(head)
            out.extend(ln for p in picked + notes for ln in ("", *p))
            out.append("")
    what = "\n".join(out).strip()
    return (f"{entry.name}: the lines of docs/sources.md (REF) about this entry:\n\n"
            + (what or "(no line names it; `gwbench specs --sources` with no NAME prints the whole file)"))


def _sections(text: str) -> list[tuple[str, list[list[str]]]]:
    """("## heading", its paragraphs: runs of non-blank lines) for each section."""
    out: list[tuple[str, list[list[str]]]] = []
    head, paras, cur = "", [], []
    for line in text.splitlines() + [""]:
        if line.startswith("## ") or not line.strip():
            if cur:
                paras.append(cur)
            cur = []
            if line.startswith("## "):
                out.append((head, paras))
                head, paras = line, []
            continue
        cur.append(line)
    out.append((head, paras))
    return [(h, p) for h, p in out if h]


def _units(para: list[str]) -> list[list[str]]:
    """A paragraph's list items (a `- ` line and its indented continuation), or the paragraph."""
    if not para[0].startswith(("- ", "* ")):
        return [para]
    units: list[list[str]] = []
    for line in para:
        if line.startswith(("- ", "* ")) or not units:
            units.append([line])
        else:
            units[-1].append(line)
    return units


def _figures(entry: Accelerator | System) -> list[Figure]:
    if isinstance(entry, Accelerator):
        figs = [*entry.dense_tflops.values(), *entry.mamf_tflops.values()]
        return figs + [getattr(entry, k) for k in FIGURE_FIELDS if getattr(entry, k)]
    return [entry.gpus, entry.power_kw] + [getattr(entry, k) for k in SYSTEM_FIGURES if getattr(entry, k)]
