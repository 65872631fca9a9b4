"""Open ``report.html`` and ``comparison.html`` in real headless Chromium: no console errors, no
external requests, a non-trivial screenshot.

The browser is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
JSON messages separated by NUL bytes on file descriptors 3 and 4), so no extra Python
package is needed. A page with deliberate errors checks that the check can fail.
Skipped when no Chromium binary is installed (CI installs Debian's ``chromium``).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import select
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers_net import write_sites_csv

from qkdplan.cli import main

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]
TIMEOUT_S = 60.0


def chromium_binary() -> str | None:
    """The Chromium executable: ``QKDPLAN_CHROMIUM`` if set, else the first one on PATH."""
    env = os.environ.get("QKDPLAN_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageCheck:
    """What the browser reported while loading one page."""

    url: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot_png: bytes = b""
    title: str = ""
    svg_count: int = 0
    body_height_px: int = 0


class DevToolsPipe:
    """A minimal DevTools-protocol client over Chromium's ``--remote-debugging-pipe``."""

    def __init__(self, binary: str, user_data_dir: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # the browser reads commands on fd 3 and writes replies on fd 4: a tiny Python launcher
        # moves the pipe ends there (via high descriptors, so they cannot overwrite each other)
        launcher = (
            "import fcntl, os, sys\n"
            "hi = [fcntl.fcntl(int(x), fcntl.F_DUPFD, 10) for x in sys.argv[1:3]]\n"
            "os.dup2(hi[0], 3)\nos.dup2(hi[1], 4)\n"
            "[os.close(x) for x in hi]\n"
            "os.execv(sys.argv[3], sys.argv[3:])\n"
        )
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                launcher,
                str(to_chrome_r),
                str(from_chrome_w),
                binary,
                *FLAGS,
                f"--user-data-dir={user_data_dir}",
                "about:blank",
            ],
            pass_fds=(to_chrome_r, from_chrome_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.send("Browser.close", wait=False)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for fd in (self._to_chrome, self._from_chrome):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _read_message(self, deadline: float) -> dict[str, Any] | None:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if not ready:
                return None
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None, wait: bool = True
    ) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        if not wait:
            return {}
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            reply = self._read_message(deadline)
            if reply is None:
                raise TimeoutError(f"no reply to {method} within {TIMEOUT_S:g} s")
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, *, timeout_s: float = TIMEOUT_S) -> None:
        if any(e.get("method") == method for e in self.events):
            return
        deadline = time.monotonic() + timeout_s
        while True:
            msg = self._read_message(deadline)
            if msg is None:
                raise TimeoutError(f"no {method} within {timeout_s:g} s")
            self.events.append(msg)
            if msg.get("method") == method:
                return

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (msg := self._read_message(deadline)) is not None:
            self.events.append(msg)


def load_page(binary: str, page: Path, user_data_dir: Path, *, width: int = 1280, height: int = 2000) -> PageCheck:
    """Load ``page`` and collect console errors, exceptions, failed loads, requests and a screenshot."""
    client = DevToolsPipe(binary, user_data_dir)
    url = page.resolve().as_uri()
    check = PageCheck(url=url)
    try:
        target = client.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = client.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            client.send(f"{domain}.enable", session=session)
        client.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        client.events.clear()
        client.send("Page.navigate", {"url": url}, session=session)
        client.wait_for("Page.loadEventFired")
        client.drain(0.5)
        png = client.send("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
        check.screenshot_png = base64.b64decode(png)
        probe = client.send(
            "Runtime.evaluate",
            {
                "expression": "JSON.stringify([document.title, document.querySelectorAll('svg').length, "
                "document.body.scrollHeight])",
                "returnByValue": True,
            },
            session=session,
        )
        check.title, check.svg_count, check.body_height_px = json.loads(probe["result"]["value"])
    finally:
        client.close()
    for e in client.events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails", {})
            check.errors.append("exception: " + str(d.get("exception", {}).get("description") or d.get("text")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            check.errors.append(f"console.{params['type']}: {args}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            check.errors.append(f"log: {entry.get('text')} ({entry.get('url', '')})")
        elif method == "Network.requestWillBeSent":
            check.requests.append(params.get("request", {}).get("url", ""))
    return check


def png_pixels(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = chromium_binary()
    if binary is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium; or set QKDPLAN_CHROMIUM)")
    return binary


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("browser")
    sites = write_sites_csv(base / "sites.csv")
    run = base / "run"
    assert (
        main(
            [
                "plan",
                str(sites),
                "--out",
                str(run),
                "--simulate",
                "--set",
                "access.reach_km=40",
                "--set",
                "security.trusted_budget=1",
                "--set",
                "solver.time_limit_s=30",
            ]
        )
        == 0
    )
    cmp_dir = base / "cmp"
    assert main(["compare", str(run), "--out", str(cmp_dir)]) == 0
    return {"report": run / "report.html", "comparison": cmp_dir / "comparison.html"}


def _assert_clean(check: PageCheck) -> None:
    assert check.errors == [], check.errors
    external = [u for u in check.requests if not u.startswith(("file:", "data:", "about:"))]
    assert external == [], f"the page requested external resources: {external}"
    pixels = png_pixels(check.screenshot_png)
    assert pixels.shape[0] >= 1000 and pixels.shape[1] == 1280
    colours = np.unique(pixels.reshape(-1, 3)[::7], axis=0)
    assert len(colours) > 100, "screenshot looks blank"
    assert float(pixels.std()) > 20.0


def test_report_opens_without_errors(chromium: str, pages: dict[str, Path], tmp_path: Path) -> None:
    check = load_page(chromium, pages["report"], tmp_path / "profile")
    _assert_clean(check)
    assert check.title.startswith("qkdplan design report")
    assert check.svg_count >= 5  # map, clusters, rate vs distance, demands, memory (+ simulation)
    assert check.body_height_px > 2000
    text = pages["report"].read_text(encoding="utf-8")
    assert "pairs flagged (prediction outside the" in text  # the simulation check is filled in
    (tmp_path / "report.png").write_bytes(check.screenshot_png)


def test_comparison_opens_without_errors(chromium: str, pages: dict[str, Path], tmp_path: Path) -> None:
    check = load_page(chromium, pages["comparison"], tmp_path / "profile")
    _assert_clean(check)
    assert check.title.startswith("qkdplan comparison")
    assert check.svg_count >= 4


def test_the_check_detects_a_broken_page(chromium: str, tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>broken</title></head><body><p>x</p>"
        "<script>console.error('deliberate console error'); no_such_function();</script>"
        "<img src='missing-image.png'></body></html>",
        encoding="utf-8",
    )
    check = load_page(chromium, page, tmp_path / "profile", height=400)
    joined = "\n".join(check.errors)
    assert "deliberate console error" in joined
    assert "no_such_function" in joined
    assert "missing-image.png" in joined or "ERR_FILE_NOT_FOUND" in joined
    with pytest.raises(AssertionError):
        _assert_clean(check)
