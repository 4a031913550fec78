"""Drive a real JupyterLab in a real browser: used by the browser tests and the widget benchmark.

A :class:`LabServer` runs ``jupyter lab`` on loopback with a known token in a scratch folder (a copy
of the lessons, so autosave never touches the repository); :func:`chromium` starts Debian's
Chromium through Playwright; :func:`run_all` opens a notebook and runs every cell; :class:`ExplorerHandle`
finds an explorer (an ipywidgets VBox holding a plot image) and moves its controls.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = os.environ.get("VGCOURSE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TOKEN = "vgcourse-browser-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """``jupyter lab`` on 127.0.0.1 with a fixed token, serving ``root``; stopped on exit, even after errors."""

    def __init__(self, root: Path, *, log: Path | None = None):
        self.root = Path(root)
        self.port = free_port()
        self.log_path = log or self.root / "jupyterlab.log"
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LabServer:
        settings = self.root / ".lab-settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False})
        )
        # render every cell (no virtual scrolling), so every output and widget is in the page
        notebook_settings = self.root / ".lab-settings" / "@jupyterlab" / "notebook-extension"
        notebook_settings.mkdir(parents=True, exist_ok=True)
        (notebook_settings / "tracker.jupyterlab-settings").write_text(
            json.dumps({"windowingMode": "none"})
        )
        env = dict(
            os.environ,
            JUPYTERLAB_SETTINGS_DIR=str(self.root / ".lab-settings"),
            JUPYTER_RUNTIME_DIR=str(self.root / ".runtime"),
            PYTHONUNBUFFERED="1",
        )
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in __exit__)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                f"--port={self.port}",
                "--ip=127.0.0.1",
                f"--IdentityProvider.token={TOKEN}",
                f"--ServerApp.root_dir={self.root}",
                "--ServerApp.disable_check_xsrf=True",
                "--LabApp.news_url=",
                "--ServerApp.port_retries=0",
                "--allow-root",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited early; log:\n{self.log_path.read_text()}")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{self.url}/api/status?token={TOKEN}", timeout=2)
                return self
            time.sleep(0.5)
        self.__exit__()
        raise RuntimeError("jupyter lab did not start within 120 s")

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={TOKEN}&reset"

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=10)
        if getattr(self, "_log", None):
            self._log.close()


def copy_lessons(lessons: list[Path], root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for path in lessons:
        shutil.copy2(path, root / path.name)


@contextlib.contextmanager
def chromium():
    """A headless Debian Chromium driven by Playwright (closed on exit)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


RUN_ALL_DONE = """() => {
    const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
    const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
    const idle = ind && ind.getAttribute('data-status') === 'idle';
    const failed = [...document.querySelectorAll('.jp-OutputArea-output')]
        .some(o => o.textContent.includes('Traceback (most recent call last)'));
    const done = prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
    return idle && (done || failed);
}"""


def run_all(page, server: LabServer, notebook: str, *, timeout_s: float = 900) -> None:
    """Open ``notebook`` in JupyterLab, run every cell (Run > Run All Cells) and wait until the kernel is idle.

    On a time-out, a screenshot goes to ``test-artifacts/`` and the error says which cells had not run.
    """
    page.goto(server.notebook_url(notebook), timeout=120_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").click()
    try:
        page.wait_for_function(RUN_ALL_DONE, timeout=timeout_s * 1000, polling=1000)
    except Exception as err:
        artifacts = Path(__file__).resolve().parents[1] / "test-artifacts"
        artifacts.mkdir(exist_ok=True)
        page.screenshot(path=str(artifacts / f"{Path(notebook).stem}-timeout.png"), full_page=True)
        prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").all_inner_texts()
        status = page.locator(".jp-Notebook-ExecutionIndicator").first.get_attribute("data-status")
        dialogs = page.locator(".jp-Dialog").all_inner_texts()
        raise RuntimeError(
            f"{notebook}: run-all did not finish in {timeout_s:.0f} s; kernel status {status!r}; "
            f"prompts {prompts}; dialogs {dialogs}"
        ) from err


def error_outputs(page) -> list[str]:
    """Text of every output that is a Python traceback."""
    texts = page.locator(".jp-OutputArea-output").all_inner_texts()
    return [t for t in texts if "Traceback (most recent call last)" in t]


class ExplorerHandle:
    """One explorer on the page: its plot image, readout and controls."""

    def __init__(self, page, index: int):
        self.page = page
        self.index = index
        self.image = page.locator("img.widget-image").nth(index)
        self.box = self.image.locator("xpath=ancestor::div[contains(@class,'widget-vbox')][1]")

    @staticmethod
    def count(page) -> int:
        return page.locator("img.widget-image").count()

    def src(self) -> str:
        return self.image.get_attribute("src") or ""

    def readout(self) -> str:
        html = self.box.locator(".widget-html code")
        return html.first.inner_text() if html.count() else ""

    def sliders(self):
        return self.box.locator(".widget-slider .noUi-handle")

    def dropdowns(self):
        return self.box.locator(".widget-dropdown select")

    def _wait_redraw(self, before: str, timeout_s: float) -> float:
        start = time.perf_counter()
        self.page.wait_for_function(
            "([i, before]) => { const im = document.querySelectorAll('img.widget-image')[i];"
            " return im && im.src && im.src !== before && im.complete; }",
            arg=[self.index, before],
            timeout=timeout_s * 1000,
            polling="raf",
        )
        return time.perf_counter() - start

    def nudge_slider(self, k: int = 0, key: str = "ArrowRight", timeout_s: float = 60) -> float:
        """Move slider ``k`` one step with the keyboard (as a learner would) and wait for the new plot; seconds."""
        before = self.src()
        handle = self.sliders().nth(k)
        handle.focus()
        start = time.perf_counter()
        handle.press(key)
        self._wait_redraw(before, timeout_s)
        return time.perf_counter() - start

    def choose(self, k: int = 0, timeout_s: float = 60) -> tuple[str, float]:
        """Pick a different option in dropdown ``k``; returns (the option chosen, seconds to the new plot)."""
        before = self.src()
        select = self.dropdowns().nth(k)
        options = select.locator("option").all_inner_texts()
        current = select.evaluate("s => s.options[s.selectedIndex].text")
        choice = next(o for o in options if o != current)
        start = time.perf_counter()
        select.select_option(label=choice)
        self._wait_redraw(before, timeout_s)
        return choice, time.perf_counter() - start
