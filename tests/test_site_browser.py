"""The published site in a real browser (headless Chromium over the DevTools pipe, tests/cdp.py):
every page loads without a console error, a refused resource or an exception; figures load;
tables sort when a header is clicked; the one inline script runs and no other can; nothing of the
build machine's paths appears. Debian's chromium (/usr/bin/chromium) is used where installed;
without it the test skips and says why (it is never downloaded)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.cli import main
from tests.cdp import Browser, find_chromium
from tests.conftest import ROOT, built_row, gemm_row, write_run_folder

CHROMIUM = find_chromium()
EVIL = "<script>document.body.setAttribute('data-pwned','1')</script>"
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian `chromium` not installed at /usr/bin/chromium "
                                                         "(apt-get install chromium); not installed by the tests")


def _rows(scale: float, power_w: float | None) -> list[dict]:
    rows = [gemm_row(300.0 * scale * n / 8192, n=n, power_w=power_w) for n in (2048, 4096, 8192)]
    rows += [gemm_row(200.0 * scale, dtype="fp16", n=n) for n in (2048, 4096)]
    for seq in (1024, 2048, 4096):
        flop = 4 * 2 * 32 * seq * seq * 128
        rows.append(built_row("attention", "fwd", "bf16", {"batch": 2, "seq": seq, "heads": 32, "kv_heads": 32,
                                                           "head_dim": 128, "causal": False},
                              backend="sdpa-flash", flop=flop, time_s=flop / (250e12 * scale)))
    for n in (1 << 24, 1 << 26):
        nbytes = 12 * n
        rows.append(built_row("memory", "triad", "fp32", {"n": n}, backend="torch", nbytes=nbytes,
                              time_s=nbytes / (2e12 * scale), power_w=power_w, extra={"array_bytes": 4 * n}))
    rows.append(gemm_row(None, dtype="fp8", n=2048, error="fp8 needs a CUDA GPU"))
    return rows


def _device(name: str, backend: str, host: str = "node1") -> dict:
    return {"name": name, "backend": backend, "count": 1, "host": host, "driver_version": "580.1",
            "software": {"torch": "2.11.0+cu130", "torch_cuda": "13.0", "cudnn": 91900, "nccl": "2.28.9",
                         "python": "3.12.3"}}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    res = tmp / "results"
    out = "/home/alice/private-results"  # the measuring machine's path, recorded in argv
    write_run_folder(res / "cpu-a", _rows(1.0, None), _device("AMD EPYC", "cpu", host=EVIL),
                     argv=["run", "--suite", "quick", "--out", out], config={"suite": "quick", "only": []},
                     started_at="2026-01-01T00:00:00+00:00")
    write_run_folder(res / "cpu-b", _rows(2.0, None), _device("AMD EPYC", "cpu"),
                     argv=["run", "--suite", "quick", "--out", out], config={"suite": "quick", "only": []},
                     started_at="2026-01-02T00:00:00+00:00")
    write_run_folder(res / "h200-standard", _rows(3.0, 650.0), _device("NVIDIA H200", "cuda"),
                     argv=["run", "--suite", "standard", "--out", str(tmp / "runs")],
                     config={"suite": "standard", "only": []}, started_at="2026-01-03T00:00:00+00:00")
    (res / "h200-standard" / "power.csv").write_text(
        "t_s,device,power_w,clock_sm_mhz,temp_c\n" + "".join(f"{i / 10},gpu0,{300 + i},1980,60\n" for i in range(40)))
    cwd = os.getcwd()
    os.chdir(tmp)  # publish from the folder above, as a user would: page names from the folder given
    try:
        assert main(["publish", str(res), "--out", str(tmp / "site")]) == 0
    finally:
        os.chdir(cwd)
    browser = Browser(CHROMIUM)
    yield tmp, tmp / "site", browser
    browser.close()


def _column(b: Browser, table: str, header: str) -> list[str]:
    """Click `header` of the page's first table matching selector `table` and return that column's
    sort keys (data-sort, else the text), top down."""
    return b.js(f"""(() => {{
        const t = document.querySelector({json.dumps(table)});
        const i = Array.from(t.tHead.rows[0].cells).findIndex(th => th.textContent.replace(/[\\u25B2\\u25BC]/g, "").trim() === {json.dumps(header)});
        if (i < 0) throw new Error("no header " + {json.dumps(header)});
        t.tHead.rows[0].cells[i].click();
        return Array.from(t.tBodies[0].rows).map(r => r.cells[i].getAttribute("data-sort") ?? r.cells[i].textContent.trim());
    }})()""")


def _numbers(values: list[str]) -> list[float]:
    return [float(v) for v in values if v and not v.startswith("—")]


def test_pages_load_clean_figures_show_tables_sort(site):
    tmp, out, b = site
    forbidden = {str(tmp), str(ROOT), str(Path.home()), "/home/alice"}
    pages = ["index.html", "compare.html", "generations.html", "projection.html",
             *(f"runs/{p.name}" for p in sorted((out / "runs").glob("*.html")))]
    assert len(pages) == 7
    for page in pages:
        b.open((out / page).as_uri())
        assert b.problems() == [], page
        html = b.js("document.documentElement.outerHTML")
        assert b.js("document.body.getAttribute('data-pwned')") is None, page  # planted script never ran
        assert not [f for f in forbidden if f in html], page
        assert b.js("document.querySelectorAll('table').length") > 0, page
        images = b.js("Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
        assert all(done and width > 0 for _, done, width in images), (page, images)
        if page.startswith("runs/"):
            assert len(images) >= 3, (page, images)  # figures are on by default: gemm, attention, memory...
            links = b.js("Array.from(document.querySelectorAll('a')).map(a => a.getAttribute('href'))")
            for name in ("run.json", "rows.jsonl"):
                assert any(link.endswith(name) for link in links), (page, name)
            for link in links:  # every link opens from disk
                assert (out / page).parent.joinpath(link).exists(), (page, link)

    # The index: a click sorts by date (text), again reverses; by TFLOP/J (numbers, empty last).
    b.open((out / "index.html").as_uri())
    started = _column(b, "table", "started (UTC)")
    assert started == sorted(started)
    assert _column(b, "table", "started (UTC)") == sorted(started, reverse=True)
    gemm = _column(b, "table", "GEMM TFLOP/s")
    assert len(_numbers(gemm)) == 3 and _numbers(gemm) == sorted(_numbers(gemm))
    energy = _column(b, "table", "TFLOP/J")  # only the H200 run read power over trusted windows
    assert len(_numbers(energy)) == 1 and energy[1:] == ["", ""]

    # The generations page: the spec peak column sorts as numbers, "—" last.
    b.open((out / "generations.html").as_uri())
    peaks = _column(b, "table.generations", "bf16 spec")
    assert _numbers(peaks) == sorted(_numbers(peaks)) and len(_numbers(peaks)) >= 8
    assert b.js("document.querySelectorAll('td.measured a').length") > 0  # measured here, linked to its run

    # A run page: provenance, the command with the measuring machine's path shortened.
    run_page = next(p for p in pages if "h200" in p)
    b.open((out / run_page).as_uri())
    text = b.js("document.body.textContent")
    assert "gwbench run --suite standard --out …/runs" in text
    assert "cuDNN 9.19.0" in text and "not recorded" in text  # git: not recorded, never "None"
    assert "None (dirty: None)" not in text
    tj = _column(b, "table.rows", "TFLOP/J")  # the rows table: work per joule from trusted windows only
    assert _numbers(tj) == sorted(_numbers(tj)) and _numbers(tj)

    # The policy is strict: a script the page did not ship is refused, and says so.
    b.js("(() => { const s = document.createElement('script'); "
         "s.textContent = \"document.body.setAttribute('data-injected', '1')\"; document.body.appendChild(s); })()")
    assert b.js("document.body.getAttribute('data-injected')") is None
    assert any("Content Security Policy" in p for p in b.problems())


def test_copied_data_is_published_data(site):
    """run.json, rows.jsonl and power.csv beside each page: the run's own, serials withheld and
    absolute paths shortened."""
    tmp, out, _ = site
    folder = out / "runs" / "h200-standard"
    meta = json.loads((folder / "run.json").read_text())
    assert meta["argv"][-1] == "…/runs" and str(tmp) not in (folder / "run.json").read_text()
    rows = [json.loads(line) for line in (folder / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == len(_rows(1.0, None))
    assert (folder / "power.csv").read_text().startswith("t_s,device,power_w")


LAYOUT = """(() => {
  const d = document.documentElement;
  const boxes = Array.from(document.querySelectorAll('table')).map(t => {
    const box = t.parentElement;
    return [box.className, getComputedStyle(box).overflowX, Math.round(box.getBoundingClientRect().right)];
  });
  const t = document.querySelector('table');
  const font = parseFloat(getComputedStyle(t.tBodies[0].rows[0].cells[0]).fontSize);
  const tallest = Math.max(...Array.from(t.tBodies[0].rows).map(r => r.getBoundingClientRect().height));
  t.parentElement.scrollLeft = t.parentElement.scrollWidth;  // the last column, scrolled to
  const cells = t.tHead ? t.tHead.rows[0].cells : t.tBodies[0].rows[0].cells;
  const last = cells[cells.length - 1].getBoundingClientRect();
  return {page: d.scrollWidth, window: d.clientWidth, boxes: boxes, lines: tallest / (font * 1.2),
          last: [Math.round(last.left), Math.round(last.right)]};
})()"""


@pytest.mark.parametrize("width", [1400, 800])
def test_wide_tables_scroll_in_their_own_box(site, width):
    """In a 1400 (or 800) px window no page scrolls sideways: every table sits in its own scroll
    box, and the index's cells wrap to a few lines rather than to their longest word (they were
    squeezed to ~10 lines, with the last columns out of sight)."""
    _, out, b = site
    pages = ["index.html", "compare.html", "generations.html", "projection.html",
             *(f"runs/{p.name}" for p in sorted((out / "runs").glob("*.html")))]
    b.viewport(width)
    try:
        for page in pages:
            b.open((out / page).as_uri())
            got = b.js(LAYOUT)
            assert got["page"] <= got["window"], (page, got)
            assert all(cls == "wide" and ox == "auto" and right <= got["window"]
                       for cls, ox, right in got["boxes"]), (page, got["boxes"])
            if page == "index.html":
                assert got["lines"] <= 4, got  # a text cell wraps at 16em, a figure not at all
                assert 0 <= got["last"][0] and got["last"][1] <= got["window"], got  # data: in reach
    finally:
        b.viewport(None)
