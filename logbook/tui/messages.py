"""Messages of the terminal app, named as past events. Workers post them; handlers act on them."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class EntriesLoaded(Message):
    """The logbook list's rows were read; ``widths`` are the list's column widths for them.
    ``total`` is set when they are only the first page, read first to paint sooner: the number
    of entries in all."""

    def __init__(self, rows: list[dict[str, Any]], widths: dict[str, int] | None = None, total: int | None = None):
        super().__init__()
        self.rows = rows
        self.widths = widths or {}
        self.total = total


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
    """The logbook list was sorted and filtered (in a worker) for ``query``; ``error`` says why a
    query with a bad key value matched nothing."""

    def __init__(self, query: str, rows: list[dict[str, Any]], generation: int, error: str | None = None):
        super().__init__()
        self.query = query
        self.rows = rows
        self.generation = generation
        self.error = error


class EntriesCounted(Message):
    """The number of entries is known (the list shows it while the rows load)."""

    def __init__(self, count: int):
        super().__init__()
        self.count = count


class EntriesJudged(Message):
    """Fresh verdicts were computed for entries whose cached one was missing or older than their
    last run; ``rows`` are their updated list rows by id."""

    def __init__(self, rows: dict[int, dict[str, Any]]):
        super().__init__()
        self.rows = rows


class ImportPreviewed(Message):
    """A source was read and checked for the import dialog; nothing is written yet."""

    def __init__(self, values: dict[str, str], options: Any, data: Any):
        super().__init__()
        self.values, self.options, self.data = values, options, data


class OtherRunsListed(Message):
    """The runs one run's environment can be compared with were listed (for the picker)."""

    def __init__(self, runs: list[dict[str, Any]]):
        super().__init__()
        self.runs = runs


class FormRejected(Message):
    """What a form submitted was refused; ``lines`` say why, in the form's words."""

    def __init__(self, lines: list[str]):
        super().__init__()
        self.lines = lines


class FormAccepted(Message):
    """What a form submitted was done; ``text`` says what happened."""

    def __init__(self, values: dict[str, str], text: str):
        super().__init__()
        self.values, self.text = values, text


class EntryRegistered(Message):
    """A new entry was registered from the app."""

    def __init__(self, entry_id: int, slug: str):
        super().__init__()
        self.entry_id, self.slug = entry_id, slug
