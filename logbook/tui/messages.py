"""Messages of the terminal app, named as past events. Workers post them; handlers act on them."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class EntriesLoaded(Message):
    def __init__(self, rows: list[dict[str, Any]]):
        super().__init__()
        self.rows = rows


class EntryLoaded(Message):
    def __init__(self, view: dict[str, Any]):
        super().__init__()
        self.view = view


class RunLoaded(Message):
    def __init__(self, view: dict[str, Any], compare: dict[str, Any] | None):
        super().__init__()
        self.view = view
        self.compare = compare


class CompareLoaded(Message):
    """The marked entries and arms were compared (logbook.entries.compare) for the compare screen."""

    def __init__(self, view: dict[str, Any]):
        super().__init__()
        self.view = view


class QueueLoaded(Message):
    def __init__(self, info: dict[str, Any]):
        super().__init__()
        self.info = info


class LaunchPreviewed(Message):
    """What an action that queues runs would execute was worked out; the person confirms it next."""

    def __init__(self, what: str, kwargs: dict[str, Any], lines: list[str], unconfirmed: list[Any]):
        super().__init__()
        self.what, self.kwargs, self.lines, self.unconfirmed = what, kwargs, lines, unconfirmed


class ActionFinished(Message):
    """An action (run, cancel, export, ...) completed; ``text`` says what happened."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text


class EntriesFiltered(Message):
    """The logbook list was sorted and filtered (in a worker) for ``query``."""

    def __init__(self, query: str, rows: list[dict[str, Any]], generation: int):
        super().__init__()
        self.query = query
        self.rows = rows
        self.generation = generation


class ImportPreviewed(Message):
    """A source was read and checked for the import dialog; nothing is written yet."""

    def __init__(self, values: dict[str, str], options: Any, data: Any):
        super().__init__()
        self.values, self.options, self.data = values, options, data
