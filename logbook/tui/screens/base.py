"""What every screen of the app shares: worker failures go to the app's one error path."""

from __future__ import annotations

from textual.screen import Screen
from textual.worker import Worker, WorkerState


class BaseScreen(Screen):
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Worker state messages do not bubble: forward failures to the app's single handler.
        if event.state == WorkerState.ERROR:
            self.app.worker_failed(event.worker.error)
