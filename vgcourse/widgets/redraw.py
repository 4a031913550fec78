"""The background redraw thread: slider moves that arrive while a redraw runs are coalesced into one
redraw of the latest values, and a cell that runs next waits for pending redraws (so seeded runs repeat)."""

from __future__ import annotations

import contextvars
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .explorer import Explorer


# -- the background redraw thread -------------------------------------------------------------------
class _Redrawer:
    """One daemon thread that draws explorers whose controls were moved in the browser.

    :meth:`request` queues an explorer once (a second request while it waits adds nothing), so
    changes that arrive during a redraw are drawn together, once, for the latest values. The
    redraw runs in a copy of the requesting message's context, so what it sends (the new image,
    any output) carries that message as its parent, as if it had been drawn in place.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: dict[Explorer, contextvars.Context] = {}  # in order of request
        self._busy: Explorer | None = None
        self._thread: threading.Thread | None = None
        self._hooked = False

    def request(self, explorer: Explorer) -> bool:
        """Queue ``explorer`` for the thread; False where no thread can run (then draw in place)."""
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                thread = threading.Thread(target=self._run, name="vgcourse-redraw", daemon=True)
                try:
                    thread.start()
                except RuntimeError:  # no threads here (e.g. a browser-only Python)
                    return False
                self._thread = thread
            self._queue[explorer] = contextvars.copy_context()  # keeps its place in the queue
            self._cond.notify_all()
        self._hook_cells()
        return True

    def wait(self, explorer: Explorer | None = None, timeout: float | None = None) -> bool:
        """Wait until ``explorer`` (every explorer when None) has no queued or running redraw."""

        def idle() -> bool:
            if explorer is None:
                return not self._queue and self._busy is None
            return explorer not in self._queue and self._busy is not explorer

        with self._cond:
            return self._cond.wait_for(idle, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue))
                explorer = self._busy = next(iter(self._queue))
                context = self._queue.pop(explorer)
            try:
                context.run(explorer._redraw_if_dirty)
            finally:
                with self._cond:
                    self._busy = None
                    self._cond.notify_all()

    def _hook_cells(self) -> None:
        """Make every notebook cell wait for queued redraws, so cells never run beside one."""
        if self._hooked:
            return
        try:
            from IPython import get_ipython
        except ImportError:
            return
        shell = get_ipython()
        if shell is not None:
            shell.events.register("pre_run_cell", self._before_cell)
            self._hooked = True

    def _before_cell(self, *_: Any) -> None:
        self.wait()


_REDRAWER = _Redrawer()
