#!/usr/bin/env python3
"""bench_web.py - the review desk's pages on a 10,000-session store, timed by the browser.

Target (issue 16, acceptance): the inbox and a session page render in ≤ 300 ms on a
10,000-session store, measured from the browser.

How: ``_stores.make_store(..., varied=True)`` builds the store (10,000 sessions, every tenth
awaiting review, so the inbox lists 1,000 phases); ``mdsessions serve --port 0`` serves it
(a real process); Debian's Chromium, driven by Playwright (``/usr/bin/chromium``, never a
downloaded browser), loads each page ``reps`` times in a new tab. The figures come from the
browser's Navigation Timing entry of each load:

* ``server`` = ``responseEnd - requestStart`` (the request sent to the last byte received:
  what the server costs, the network being loopback);
* ``page`` = ``loadEventEnd - startTime`` (navigation start to the end of the load event:
  what the reviewer waits for; the target applies to this one);
* ``after the last byte`` = ``loadEventEnd - responseEnd`` (the browser's own part: parse,
  style, layout, the page's stylesheet and script).

Baselines measured in the same run, interleaved with the pages (one load of each per round,
so machine noise hits them alike): the same HTML bytes as the inbox served as a static file
by Python's ``http.server`` (the browser's floor for a page of that size), the desk's own
``/static/live.js`` (the server's floor per request), and ``git log`` of the session
(the command a person would run for the session's story). Median of the runs; "noise" is
(p95 − min) / median; the machine's load average before and after is reported.

    python benchmarks/bench_web.py               # 10,000 sessions, ~2-3 min
    python benchmarks/bench_web.py --quick       # 1,000 sessions, fewer runs
    python benchmarks/bench_web.py --json out.json

``measure(workdir, quick) -> dict`` and ``render(result) -> str`` are what ``bench.py`` calls.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import http.server
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO_ROOT))
from _stores import make_store  # noqa: E402
from bench_checkpoint import percentile, setup_env, sysinfo  # noqa: E402

PAGE_MS = 300.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NAV_TIMING = """() => {
  const n = performance.getEntriesByType('navigation')[0];
  return {server: n.responseEnd - n.requestStart, page: n.loadEventEnd - n.startTime,
          browser: n.loadEventEnd - n.responseEnd, bytes: n.encodedBodySize};
}"""


def _stats(xs: list[float]) -> dict[str, float]:
    median = statistics.median(xs)
    return {
        "median": round(median, 1),
        "p95": round(percentile(xs, 0.95), 1),
        "min": round(min(xs), 1),
        "noise": round((percentile(xs, 0.95) - min(xs)) / median, 2) if median else 0.0,
        "n": len(xs),
    }


def _serve(root: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mdsessions", "--store", str(root), "serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=log.open("w"), text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.fullmatch(r"Serving (http://\S+?/)\n", line)
    if found is None:
        proc.kill()
        raise RuntimeError(f"serve printed {line!r}:\n{log.read_text()[-2000:]}")
    return proc, found.group(1).rstrip("/")


def _static_server(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(Quiet, directory=str(folder))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _git_log(root: Path, rel: str) -> Callable[[], None]:
    def run() -> None:
        subprocess.run(["git", "log", "--format=%H %an %s", "--", rel], cwd=root,
                       capture_output=True, check=True)  # fmt: skip

    return run


def measure(workdir: Path, quick: bool = False) -> dict[str, Any]:
    """Build the store, serve it, and time each page in Chromium beside its baselines.

    Returns:
        JSON-ready figures: per page the server and page times (ms), bytes, target, met.

    Raises:
        RuntimeError: If ``serve`` does not start or a page is not what the contract says.
    """
    from playwright.sync_api import sync_playwright

    from mdsessions import Store

    setup_env(workdir)
    sessions = 1_000 if quick else 10_000
    reps = 7 if quick else 21
    root = workdir / "store"
    if root.exists():
        shutil.rmtree(root)
    built = make_store(root, sessions, varied=True)
    with Store.open(root) as own:  # HEAD is mdsessions' own commit, as in a store in use
        own.create_session("bench", "own-commit")
    time.sleep(2.1)  # past the racy window (the index trusts only older files)
    subprocess.run([sys.executable, "-m", "mdsessions", "--store", str(root), "list"],
                   env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True,
                   check=True)  # fmt: skip
    load_before = os.getloadavg()
    proc, base = _serve(root, workdir / "serve.log")
    static_dir = workdir / "static"
    static_dir.mkdir(exist_ok=True)
    static, static_base = _static_server(static_dir)
    out: dict[str, Any] = {"sessions": sessions + 1, "build_s": round(built.seconds, 1),
                           "reps": reps}  # fmt: skip
    try:
        with urllib.request.urlopen(base + "/", timeout=60) as response:
            inbox_html = response.read()
        (static_dir / "inbox.html").write_bytes(inbox_html)
        first = re.search(rb'data-session="([^"/]+)/([^"]+)" data-phase="(\d+)"', inbox_html)
        if first is None:
            raise RuntimeError("the inbox lists no tr.inbox-item[data-session][data-phase]")
        project, sid, phase = (g.decode() for g in first.groups())
        rows = inbox_html.count(b'class="inbox-item"')
        out["inbox_rows"] = rows
        pages = {
            "inbox (/)": base + "/",
            "session page": f"{base}/s/{project}/{sid}",
            "phase page": f"{base}/s/{project}/{sid}/phase/{phase}",
            "baseline: the inbox's bytes as a static file (http.server)": (
                static_base + "/inbox.html"
            ),
            "baseline: /static/live.js (same server)": base + "/static/live.js",
        }
        times: dict[str, dict[str, list[float]]] = {
            k: {"server": [], "page": [], "browser": []} for k in pages
        }
        sizes: dict[str, int] = {}
        git_ms: list[float] = []
        git_log = _git_log(root, f"projects/{project}/sessions/{sid}")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            for url in pages.values():  # one warm-up load each (not counted)
                page = context.new_page()
                response = page.goto(url, wait_until="load")
                if response is None or response.status != 200:
                    raise RuntimeError(f"{url}: {None if response is None else response.status}")
                page.close()
            for rep in range(reps):
                for name, url in pages.items():
                    page = context.new_page()
                    if url.startswith(static_base):  # no 304 from the browser's cache
                        url = f"{url}?rep={rep}"
                    page.goto(url, wait_until="load")
                    page.wait_for_function(
                        "() => performance.getEntriesByType('navigation')[0].loadEventEnd > 0"
                    )
                    got = page.evaluate(NAV_TIMING)
                    page.close()
                    times[name]["server"].append(float(got["server"]))
                    times[name]["page"].append(float(got["page"]))
                    times[name]["browser"].append(float(got["browser"]))
                    sizes[name] = int(got["bytes"])
                start = time.perf_counter()
                git_log()
                git_ms.append((time.perf_counter() - start) * 1000)
            browser.close()
    finally:
        static.shutdown()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    out["load_before"] = [round(x, 2) for x in load_before]
    out["load_after"] = [round(x, 2) for x in os.getloadavg()]
    out["pages"] = []
    for name in pages:
        target = PAGE_MS if not name.startswith("baseline") else None
        page_stats = _stats(times[name]["page"])
        out["pages"].append({
            "page": name,
            "bytes": sizes.get(name, 0),
            "server": _stats(times[name]["server"]),
            "page_load": page_stats,
            "browser": _stats(times[name]["browser"]),
            "target_ms": target,
            "met": None if target is None else page_stats["median"] <= target,
        })  # fmt: skip
    out["git_log"] = _stats(git_ms)
    return out


def table(result: dict[str, Any]) -> str:
    """The markdown table of :func:`measure`'s figures."""
    lines = [
        f"{result['sessions']:,} sessions, inbox of {result['inbox_rows']:,} phases; "
        f"{result['reps']} loads of each page, interleaved; load average "
        f"{result['load_before']} before, {result['load_after']} after.",
        "",
        "| page | bytes | server ms median (p95) | after the last byte ms | page ms median (p95) "
        "| noise | target ms | met |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]  # fmt: skip
    for r in result["pages"]:
        s, p = r["server"], r["page_load"]
        met = "-" if r["met"] is None else ("yes" if r["met"] else "NO")
        target = "-" if r["target_ms"] is None else f"{r['target_ms']:g}"
        lines.append(
            f"| {r['page']} | {r['bytes']:,} | {s['median']} ({s['p95']}) | "
            f"{r['browser']['median']} | {p['median']} ({p['p95']}) | {p['noise']} | "
            f"{target} | {met} |"
        )
    g = result["git_log"]
    lines.append(
        f"| baseline: `git log -- <session folder>` (a command, wall time) | - | "
        f"{g['median']} ({g['p95']}) | - | - | {g['noise']} | - | - |"
    )
    return "\n".join(lines)


def render(result: dict[str, Any]) -> str:
    """The part's report for ``bench.py``: a heading and :func:`table`."""
    return "## Review desk: pages in the browser (issue 16)\n\n" + table(result)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 sessions, fewer runs")
    parser.add_argument("--workdir", type=Path, help="where to build (default: a temp folder)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    import tempfile

    began = time.time()
    with tempfile.TemporaryDirectory(prefix="mdsessions-bench-web-") as tmp:
        result = measure(args.workdir or Path(tmp), args.quick)
    result["system"] = sysinfo()
    result["date"] = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    result["took_s"] = round(time.time() - began, 1)
    print(table(result))
    print(json.dumps({k: result[k] for k in ("date", "took_s", "system")}))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
