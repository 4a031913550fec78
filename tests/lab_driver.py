"""Drive a real JupyterLab in a real browser: used by the browser tests and the widget benchmark.

A :class:`LabServer` runs ``jupyter lab`` on loopback with a known token in a scratch folder (a copy
of the lessons, so autosave never touches the repository); :func:`chromium` starts Debian's
Chromium through Playwright; :func:`run_all` opens a notebook and runs every cell; :class:`ExplorerHandle`
finds an explorer (an ipywidgets VBox holding a plot image) and moves its controls.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
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


def _stop_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM when the parent (the test process) dies.

    So a test run that is killed outright (``kill -9``, a CI time-out) still takes JupyterLab down, and
    with it its kernels (ipykernel exits when the server that started it is gone).
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


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
                "--LabApp.expose_app_in_browser=True",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_stop_with_parent,
        )
        atexit.register(self.__exit__)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited early; log:\n{self.log_path.read_text()}")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{self.url}/api/status?token={TOKEN}", timeout=2)
                return self
            time.sleep(0.5)
        self.__exit__()
        raise RuntimeError(
            f"jupyter lab did not start within 120 s; log:\n{self.log_path.read_text()}"
        )

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={TOKEN}&reset"

    def _api(self, method: str, path: str) -> object:
        req = urllib.request.Request(f"{self.url}{path}?token={TOKEN}", method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def start_kernel(self) -> str:
        """Start a kernel through the REST API (as opening a notebook does); returns its id."""
        return self._api("POST", "/api/kernels")["id"]

    def shutdown_kernels(self) -> None:
        """Shut down every kernel of this server through its REST API (best effort)."""
        with contextlib.suppress(Exception):
            for kernel in self._api("GET", "/api/kernels"):
                with contextlib.suppress(Exception):
                    self._api("DELETE", f"/api/kernels/{kernel['id']}")

    def leftover_processes(self) -> list[int]:
        """PIDs still running that belong to this server: the server itself and any kernel.

        Kernels run in sessions of their own (jupyter_client starts them with ``start_new_session``), so
        killing the server's process group does not reach them; they are found by their connection
        file, which lives in this server's runtime folder.
        """
        marker = str(self.root / ".runtime")
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                cmdline = (
                    (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
                if marker in cmdline or (self.proc is not None and int(proc.name) == self.proc.pid):
                    pids.append(int(proc.name))
        return pids

    def __exit__(self, *exc) -> None:
        """Stop kernels, then the server, then anything of theirs still alive; also after errors."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.shutdown_kernels()
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=10)
            deadline = time.monotonic() + 10
            while self.leftover_processes() and time.monotonic() < deadline:
                time.sleep(0.2)
            for pid in self.leftover_processes():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        finally:
            if getattr(self, "_log", None):
                self._log.close()
                self._log = None
            atexit.unregister(self.__exit__)


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


# The notebook's state as JupyterLab itself sees it (``window.jupyterapp``, exposed by the server flag
# ``--LabApp.expose_app_in_browser``). The toolbar's execution indicator is no substitute: it reads
# ``idle`` while the notebook is still loading and no kernel is attached yet, and a Run All issued then
# is dropped by JupyterLab without a word (issue 13: the browser test then waited 900 s on an idle page).
NOTEBOOK_STATE = """(name) => {
    const app = window.jupyterapp;
    if (!app) return {phase: 'no app'};
    const panel = app.shell.currentWidget;
    if (!panel || !panel.context || !panel.sessionContext || !panel.content) return {phase: 'no notebook'};
    if (!panel.context.path.endsWith(name)) return {phase: 'other tab: ' + panel.context.path};
    const sc = panel.sessionContext;
    const kernel = sc.session ? sc.session.kernel : null;
    // Execution as the cell models record it: a folded cell (jupyter.source_hidden) keeps its prompt
    // out of view, so its [n] is read from the model, not from the page.
    const code = panel.content.widgets.filter(w => w.model.type === 'code');
    const running = w => w.model.executionState === 'running' || (w.promptNode && w.promptNode.textContent.includes('*'));
    const outputs = [...panel.node.querySelectorAll('.jp-OutputArea-output')];
    return {
        phase: 'notebook',
        loaded: panel.context.isReady && panel.content.widgets.length === panel.content.model.cells.length,
        session: sc.isReady,
        kernel: kernel ? kernel.status : null,
        connection: kernel ? kernel.connectionStatus : null,
        dialogs: [...document.querySelectorAll('.jp-Dialog')].map(d => d.innerText.slice(0, 200)),
        code_cells: code.length,
        started: code.filter(w => w.model.executionCount !== null || running(w)).length,
        finished: code.filter(w => w.model.executionCount !== null && !running(w)).length,
        queued: code.filter(running).length,
        failed: outputs.some(o => o.textContent.includes('Traceback (most recent call last)')),
    };
}"""


def notebook_state(page, notebook: str) -> dict:
    """What JupyterLab reports for ``notebook``: loaded, session ready, kernel status, prompts run."""
    return page.evaluate(NOTEBOOK_STATE, Path(notebook).name)


def _kernel_ready(state: dict) -> bool:
    return (
        state.get("phase") == "notebook"
        and state["loaded"]
        and state["session"]
        and state["kernel"] == "idle"
        and state["connection"] == "connected"
        and not state["dialogs"]
    )


def open_notebook(page, server: LabServer, notebook: str, *, timeout_s: float = 120) -> dict:
    """Open ``notebook`` and wait until it is loaded and its kernel is connected and idle."""
    page.goto(server.notebook_url(notebook), timeout=timeout_s * 1000)
    deadline = time.monotonic() + timeout_s
    state: dict = {}
    while time.monotonic() < deadline:
        state = notebook_state(page, notebook)
        if _kernel_ready(state):
            return state
        time.sleep(0.2)
    raise RuntimeError(
        f"{notebook}: the kernel was not ready within {timeout_s:.0f} s; last state {state}"
    )


def _click_run_all(page) -> None:
    """Run > Run All Cells, through the menu as a learner would."""
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").click()


def _screenshot(page, notebook: str, suffix: str) -> Path:
    artifacts = Path(__file__).resolve().parents[1] / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    path = artifacts / f"{Path(notebook).stem}-{suffix}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def run_all(
    page,
    server: LabServer,
    notebook: str,
    *,
    timeout_s: float = 900,
    start_timeout_s: float = 20,
    stall_timeout_s: float = 60,
    errors_expected: bool = False,
) -> dict:
    """Open ``notebook`` in JupyterLab, Run All Cells, and wait until every cell ran (or one failed).

    With ``errors_expected`` (the learner edition, whose unanswered exercises raise in cells tagged
    ``raises-exception``) a traceback does not end the wait: it lasts until every cell has run.

    Run All is clicked only once JupyterLab reports the notebook loaded and its kernel connected and
    idle. If no cell has started ``start_timeout_s`` after the click, the page is reloaded and Run All
    tried once more (with a message saying so); a second miss is an error, so a lesson whose cells
    never start fails within a minute. A run whose kernel sits idle for ``stall_timeout_s`` with cells
    left unrun, or that takes longer than ``timeout_s``, is an error too. Each error saves a screenshot
    in ``test-artifacts/`` and says what JupyterLab reported. Returns the final notebook state.
    """
    for attempt in (1, 2):
        open_notebook(page, server, notebook)
        _click_run_all(page)
        clicked = time.monotonic()
        state = notebook_state(page, notebook)
        while not (state.get("started") or state.get("kernel") == "busy"):
            if time.monotonic() - clicked > start_timeout_s:
                break
            time.sleep(0.2)
            state = notebook_state(page, notebook)
        else:
            break
        shot = _screenshot(page, notebook, f"not-started-{attempt}")
        if attempt == 2:
            raise RuntimeError(
                f"{notebook}: Run All started no cell within {start_timeout_s:.0f} s, twice (the second "
                f"time after reloading the page); JupyterLab reports {state}; screenshot {shot}"
            )
        print(
            f"{notebook}: Run All started no cell within {start_timeout_s:.0f} s "
            f"(JupyterLab reports {state}); reloading the page and trying once more",
            flush=True,
        )
    idle_since = None
    while True:
        state = notebook_state(page, notebook)
        if (
            state.get("kernel") == "idle"
            and not state["queued"]
            and (
                (state["failed"] and not errors_expected)
                or state["finished"] == state["code_cells"]
            )
        ):
            return state
        now = time.monotonic()
        idle_since = (idle_since or now) if state.get("kernel") == "idle" else None
        stalled = idle_since is not None and now - idle_since > stall_timeout_s
        if stalled or now - clicked > timeout_s:
            shot = _screenshot(page, notebook, "timeout")
            why = (
                f"the kernel sat idle for {stall_timeout_s:.0f} s with cells left unrun"
                if stalled
                else f"run-all did not finish in {timeout_s:.0f} s"
            )
            raise RuntimeError(f"{notebook}: {why}; JupyterLab reports {state}; screenshot {shot}")
        time.sleep(0.5)


# What a learner sees of the learner edition's own parts: claim cells (folded?), solution blocks
# (collapsed?), and every cell that shows a traceback (its tags and the error's text).
LEARNER_STATE = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const result = {claims: [], solutions: [], errors: []};
    panel.content.widgets.forEach((cell, i) => {
        const tags = cell.model.getMetadata('tags') || [];
        const kind = cell.model.type;
        if (kind === 'code' && tags.includes('claims')) {
            const out = cell.node.querySelector('.jp-OutputArea');
            result.claims.push({index: i, folded: cell.inputHidden, output: out ? out.innerText.slice(0, 400) : ''});
        }
        if (kind === 'markdown') {
            cell.node.querySelectorAll('.jp-RenderedMarkdown details').forEach(d => {
                const summary = d.querySelector('summary');
                const body = d.querySelector('pre, p');
                result.solutions.push({
                    index: i,
                    open: d.open,
                    summary: summary ? summary.innerText.trim() : null,
                    body_visible: body ? (body.offsetHeight > 0 && body.checkVisibility()) : false,
                });
            });
        }
        if (kind === 'code') {
            const tracebacks = [...cell.node.querySelectorAll('.jp-OutputArea-output')]
                .map(o => o.innerText).filter(t => t.includes('Traceback (most recent call last)'));
            if (tracebacks.length) result.errors.push({index: i, tags: tags, text: tracebacks[0].slice(0, 1500)});
        }
    });
    return result;
}"""


def learner_state(page) -> dict:
    """Claims, solution blocks and tracebacks of the open notebook, as JupyterLab renders them."""
    return page.evaluate(LEARNER_STATE)


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
