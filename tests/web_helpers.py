"""What the browser tests share: a demo-like store, a real ``mdsessions serve``, Chromium.

Imported by the ``test_web_*`` modules (``tests/`` is on ``sys.path``). Everything is real:
the store is built by the library in ``tmp_path`` (sessions run by the sample workflow's
offline agents up to their first review gate), the server is a ``python -m mdsessions serve
--port 0`` process whose first stdout line names its URL, and the browser is Debian's
Chromium (``/usr/bin/chromium``) driven by Playwright. Playwright's own browser download
(``playwright install``) is never used: the tests launch the system Chromium, and skip with
the reason when it (or Playwright, or the ``web`` extra) is missing. ``.ci/run`` installs both.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from helpers import PERSON_EMAIL, PERSON_NAME, REPO_ROOT, write_git_config

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Response

CHROMIUM = Path("/usr/bin/chromium")
#: Chromium's flags as the machine notes give them: headless, no sandbox (root), no GPU, and
#: no background connections (the closed network refuses them). Playwright gives each
#: launch a new empty user-data-dir of its own.
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
WORKFLOW = REPO_ROOT / "sample_project" / "workflow.toml"
PROJECT = "sample"
ANN = "Ann Reviewer <ann@example.com>"
IDEA = "A leaderboard for small gyms: members compete on streaks, not weights."
START_LIMIT = 30.0  # seconds for `mdsessions serve` to print its URL
STOP_LIMIT = 15.0  # seconds for it to exit after SIGTERM


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)"
    for module in ("playwright", "starlette", "uvicorn", "nh3", "markdown_it"):
        if importlib.util.find_spec(module) is None:
            return f"Python package {module!r} is missing (pip install -e '.[test]')"
    return None


needs_browser = pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))


def process_env(gitconfig: Path, **extra: str) -> dict[str, str]:
    """The environment of a real ``mdsessions`` process: this checkout, a private git config."""
    out = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "MDSESSIONS_"))}
    out.pop("VISUAL", None)
    out.pop("EDITOR", None)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), out.get("PYTHONPATH")) if p)
    out["GIT_CONFIG_GLOBAL"] = str(gitconfig)
    out["GIT_CONFIG_NOSYSTEM"] = "1"
    out.update(extra)
    return out


@contextlib.contextmanager
def git_env(gitconfig: Path) -> Iterator[None]:
    """Run the block with the private git config (module fixtures cannot use monkeypatch)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("GIT_"):
                mp.delenv(name, raising=False)
        mp.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        yield


def mds(
    root: Path, gitconfig: Path, *args: str, code: int | None = 0, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m mdsessions --store ROOT ARGS`` as a real process; check its exit status."""
    proc = subprocess.run(
        [sys.executable, "-m", "mdsessions", "--store", str(root), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=process_env(gitconfig, **env),
        timeout=timeout,
        check=False,
    )
    if code is not None:
        assert proc.returncode == code, (args, proc.returncode, proc.stdout, proc.stderr)
    return proc


# ------------------------------------------------------------------------------ the store


def build_demo_store(root: Path, gitconfig: Path, sessions: list[str]) -> None:
    """A store like the demo's: each session run by the sample workflow to its phase 1 review.

    Args:
        root: The folder for the new store.
        gitconfig: The private git config the store is built under.
        sessions: Session ids in project ``sample``, started in this order (so the inbox,
            oldest first, lists them in this order).
    """
    from mdsessions import Runner, SessionStatus, Store

    with git_env(gitconfig):
        store = Store.init(root)
        try:
            runner = Runner(store, WORKFLOW)
            for sid in sessions:
                result = runner.start(PROJECT, sid, idea=f"{IDEA} ({sid})", mode="mvp")
                assert result.status is SessionStatus.AWAITING_REVIEW, result.message
        finally:
            store.close()


def copy_store(template: Path, target: Path) -> Path:
    """A copy of a built store (cheaper than building it again); ``target`` must not exist."""
    shutil.copytree(template, target, symlinks=True)
    return target


# ------------------------------------------------------------------------------ the server


@dataclass
class Server:
    """A running ``mdsessions serve`` process and the URL it printed."""

    proc: subprocess.Popen[str]
    url: str
    log: Path
    lines: queue.Queue[str] = field(default_factory=queue.Queue)

    @property
    def base(self) -> str:
        """The URL without its query (``http://HOST:PORT``), no trailing slash."""
        return self.url.split("?", 1)[0].rstrip("/")

    def stderr(self) -> str:
        """What the server wrote to stderr so far (for failure messages)."""
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        """SIGTERM, then wait: the exit status (a clean stop is 0)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_LIMIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise AssertionError(
                    f"serve did not stop within {STOP_LIMIT} s of SIGTERM:\n{self.stderr()}"
                ) from None
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return int(self.proc.returncode)


def start_server(root: Path, gitconfig: Path, log: Path, *args: str) -> Server:
    """Start ``mdsessions serve --port 0 ARGS`` on the store and read its ``Serving`` line.

    Raises:
        AssertionError: The process ended or printed no ``Serving http://…/`` line within
            ``START_LIMIT`` seconds (its stderr is in the message).
    """
    err = log.open("w", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mdsessions", "--store", str(root), "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        encoding="utf-8",
        env=process_env(gitconfig, PYTHONUNBUFFERED="1"),
    )
    err.close()
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    server = Server(proc, "", log, lines)
    try:
        first = lines.get(timeout=START_LIMIT)
    except queue.Empty:
        server.stop()
        raise AssertionError(
            f"serve printed nothing in {START_LIMIT} s:\n{server.stderr()}"
        ) from None
    match = re.fullmatch(r"Serving (http://[^\s/]+/(\?token=\S+)?)\n", first)
    if match is None:
        server.stop()
        raise AssertionError(f"serve's first line is {first!r}, not 'Serving http://…/':\n"
                             f"{server.stderr()}")  # fmt: skip
    server.url = match.group(1)
    return server


def http(
    url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """A plain HTTP request (no browser): ``(status, body text)``, errors included."""
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode("utf-8", "replace")


# ------------------------------------------------------------------------------ the browser


@dataclass
class Desk:
    """A store, its server and the identity the test processes run under."""

    root: Path
    gitconfig: Path
    server: Server

    def phase_url(self, sid: str, phase: int, project: str = PROJECT) -> str:
        return f"{self.server.base}/s/{project}/{sid}/phase/{phase}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Debian Chromium for the module (launched by Playwright, never downloaded)."""
    reason = browser_missing()
    if reason is not None:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Tab:
    """A page and what it saw: dialogs opened (alert/confirm/prompt) and console errors."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def goto(self, url: str) -> Response:
        """Open ``url``; its response (once more if a live reload cut the first one short)."""
        response = self.page.goto(url)
        if response is None:
            response = self.page.goto(url)
        assert response is not None, url
        return response

    def submit(self) -> Response:
        """Click ``button#decide`` and return the final response of the POST (after 303s)."""
        with self.page.expect_navigation() as nav:
            self.page.click("button#decide")
        response = nav.value
        assert response is not None
        return response


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    """A fresh browser context (no cookies) and page, 1280x800; closed after the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    seen = Tab(page)

    def on_dialog(dialog: Any) -> None:
        seen.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda msg: seen.console.append(f"{msg.type}: {msg.text}"))
    try:
        yield seen
    finally:
        context.close()


def fill_decision(
    page: Page,
    action: str,
    *,
    comments: str = "",
    changes: tuple[str, ...] = (),
    reviewer: str | None = ANN,
) -> None:
    """Fill ``form#decision`` as a person would (radio, textareas, reviewer)."""
    page.check(f"form#decision input[name=action][value={action}]")
    page.fill("form#decision textarea[name=comments]", comments)
    page.fill("form#decision textarea[name=requested_changes]", "\n".join(changes))
    if reviewer is not None:
        page.fill("form#decision input[name=reviewer]", reviewer)


def identity() -> str:
    """The test person (the store's git config identity)."""
    return f"{PERSON_NAME} <{PERSON_EMAIL}>"


def new_gitconfig(folder: Path) -> Path:
    """A private git config in ``folder`` (created) for module-scoped stores."""
    folder.mkdir(parents=True, exist_ok=True)
    return write_git_config(folder)


def wait_for(predicate: Any, timeout: float, what: str) -> float:
    """Poll ``predicate()`` every 20 ms until true; seconds it took. Fails after ``timeout``."""
    began = time.monotonic()
    while not predicate():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - began
