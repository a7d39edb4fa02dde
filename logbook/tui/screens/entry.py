"""The entry screen: the registered hypothesis, every seed's outcome, the verdict, and actions."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static

from logbook.db.engine import ChangeWatch
from logbook.entries.pilot import delta_text
from logbook.entries.states import verdict_state
from logbook.export.escape import terminal
from logbook.export.markdown import arm_rows
from logbook.db.runstatus import ACTIVE, RETRYABLE
from logbook.tui.messages import ActionFinished, EntryLoaded, LaunchPreviewed
from logbook.tui.screens.base import BaseScreen
from logbook.tui.screens.modals import ConfirmScreen, Field, FormScreen
from logbook.tui.study_widgets import StudyPanel
from logbook.tui.data import duration, elapsed_s, origin_label, progress, typical_wall_times
from logbook.tui.widgets import CursorTable, Distribution, badge, figure, refill_table, retro_badge, seed_text, sparkline


def trimmed(text: Text) -> Text:
    """The text without its final newline (a card ends at its last line)."""
    text.rstrip()
    return text


def change(comparison: dict[str, Any], sign: int) -> str:
    """A comparison's effect and interval as candidate minus baseline (``sign`` -1 where lower is
    better: stored effects count an improvement as positive)."""
    ends = [sign * x if isinstance(x, (int, float)) else None for x in (comparison.get("ci_low"), comparison.get("ci_high"))]
    low, high = (ends if sign > 0 else ends[::-1])
    effect = comparison.get("effect")
    return f"{figure(sign * effect if isinstance(effect, (int, float)) else None)} [{figure(low)}, {figure(high)}]"


EXPORT_FORMATS = ("md", "tex", "json", "csv")


def export_entry(store: Any, ref: str, fmt: str, folder: str) -> str:
    """Write one entry's export; says which file was written. Refusals name the dialog's fields."""
    from pathlib import Path

    from logbook.errors import InputError
    from logbook.export.writer import export

    if fmt not in EXPORT_FORMATS:
        raise InputError(f"Format: expected one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    if not folder.strip():
        raise InputError("Folder: expected a folder to write to")
    out = Path(folder.strip()).expanduser()
    try:
        written = export(store, [ref], all_entries=False, verdicts=None, fmt=fmt, out=out)
    except OSError as exc:
        raise InputError(f"Folder: cannot write to {out} ({exc.strerror or exc}); expected a folder you can write") from exc
    others = len(written) - 1
    return f"wrote {written[0]}" + (f" (and {others} more: figures, verdict)" if others else "")


class EntryScreen(BaseScreen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("r", "run", "Run"),
        Binding("plus", "add_seeds", "+Seeds"),
        Binding("c", "cancel", "Cancel"),
        Binding("R", "requeue", "Requeue"),
        Binding("m", "amend", "Amend"),
        Binding("e", "export", "Export"),
        Binding("u", "audit", "Audit"),
        Binding("n", "robustness", "Neighbours", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False, priority=True),
        Binding("pageup", "page(-1)", "Page up", show=False, priority=True),
    ]

    def __init__(self, entry_id: int):
        super().__init__()
        self.entry_id = entry_id
        self.view: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="entry-body", can_focus=False):  # Tab stays on the runs table, where focus shows
            yield Static(id="card", classes="card")
            yield Static(id="verdict-panel", classes="card")
            yield Distribution(id="distribution", classes="card")
            yield Static(id="stats", classes="card")
            yield Static(id="curves", classes="card")
            yield StudyPanel(id="studies", classes="card")
            yield Static(id="audits", classes="card")
            yield CursorTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        for column in ("run", "arm", "seed", "origin", "status", "value", "time", "note"):
            table.add_column(column, key=column)
        # arrows walk the runs, Enter opens one, PageUp/PageDown scroll the page; the page itself
        # opens at its top (title and hypothesis), not scrolled down to the focused table
        table.focus(scroll_visible=False)
        self.changes = ChangeWatch(self.app.store)
        self.load()
        self.set_interval(self.app.refresh_s, self.load)

    def on_unmount(self) -> None:
        self.changes.close()

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load(self) -> None:
        """Read the entry's view, unless nothing was committed since the last read and none of its
        runs is queued or running (their waiting and elapsed times move on without a commit)."""
        from logbook.tui.data import entry_view

        view = self.view
        if not self.changes.changed() and view is not None and not any(r["status"] in ACTIVE for r in view["runs"]):
            return
        try:
            fresh = entry_view(self.app.store, self.entry_id)
        except Exception:
            self.changes.forget()  # a read that failed is tried again at the next tick
            raise
        self.post_message(EntryLoaded(fresh))

    def on_entry_loaded(self, message: EntryLoaded) -> None:
        first = self.view is None
        self.view = view = message.view
        e, v = view["entry"], view["verdict"]
        self.title, self.sub_title = terminal(e["title"]), f"{e['slug']} · {e['status']}"
        self.query_one("#card", Static).update(trimmed(self.card(e, v)))
        self.query_one("#verdict-panel", Static).update(trimmed(self.verdict_text({**v, "state": verdict_state(v, e["status"])})))
        self.query_one(Distribution).show(
            [(a["name"], [x if x is not None else float("nan") for x in v["arms"][a["name"]]["values"]],
              v["arms"][a["name"]]["excluded"]) for a in e["arms"]], **self.distribution_marks(view))
        self.query_one("#stats", Static).update(trimmed(self.stats_text(view)))
        self.query_one("#curves", Static).update(trimmed(self.curves_text(view["curves"], v.get("churn"))))
        self.query_one("#audits", Static).update(trimmed(self.audits_text(view["audits"], e["goal"])))
        self.query_one(StudyPanel).show(view.get("studies"))
        refill_table(self.query_one("#runs", DataTable), self.run_rows(view["runs"], datetime.now(timezone.utc)))
        if first:
            self.query_one("#entry-body", VerticalScroll).scroll_home(animate=False)

    @staticmethod
    def run_rows(runs: list[dict[str, Any]], now: datetime) -> list[tuple[str, list[Any]]]:
        """The runs table's rows: a finished run's wall time; a running one's elapsed time, share
        done and time left, estimated from its arm's succeeded runs (as the queue screen does)."""
        typical = typical_wall_times(runs, lambda r: r["arm"])
        rows = []
        for r in runs:
            style = "red" if r["status"] in RETRYABLE else ("yellow" if r["status"] in ACTIVE else "")
            note = r["error"][0][:40]
            if r["status"] == "running":
                shown, left = progress(elapsed_s(r["started_at"], now), typical.get(r["arm"]))
                note = "" if left == "–" else f"{left} left"
            elif r["status"] == "queued":
                shown = "–"
            else:
                shown = duration(r["wall_time_s"])
            rows.append((str(r["id"]), [str(r["id"]), Text(r["arm"]), seed_text(r["seed"]), origin_label(r["origin"]),
                                        Text(r["status"], style=style), figure(r["value"]), shown,
                                        Text(note, style="dim")]))
        return rows

    @staticmethod
    def distribution_marks(view: dict[str, Any]) -> dict[str, Any]:
        """Where the strip plot draws its zero line (the baseline mean) and its δ band."""
        e, v = view["entry"], view["verdict"]
        baseline = next((c["baseline"] for c in v["comparisons"]), None)
        reference = baseline["mean"] if baseline and isinstance(baseline.get("mean"), (int, float)) else None
        delta = e.get("min_effect") if isinstance(e.get("min_effect"), (int, float)) else None
        return {"reference": reference, "delta": delta, "better": -1 if e["goal"] == "minimize" else 1}

    @staticmethod
    def card(e: dict[str, Any], v: dict[str, Any]) -> Text:
        text = Text()
        text.append(terminal(e["title"]) + "\n", style="bold")
        if e.get("retrospective"):
            source = e["import_source"] or {}
            text.append_text(retro_badge())
            text.append(terminal(f" imported from {source.get('kind')} {source.get('experiment') or source.get('location')}: "
                                 f"{e['retrospective_note']}") + "\n", style="magenta")
            if e["rerun_missing"]:
                text.append(terminal(f"cannot be audited: {'; '.join(e['rerun_missing'])}") + "\n", style="dim")
        text.append(terminal(e["hypothesis"], multiline=True) + "\n")
        direction = "lower is better" if e["goal"] == "minimize" else "higher is better"
        trainer = e["trainer"].get("name") or ("command" if e["trainer"].get("command") else "none (imported)")
        text.append(terminal(f"{e['metric']} ({direction}) · δ = {delta_text(e, figure)} · α = {figure(e['alpha'])}, "
                             f"family of {v['family_size']}") + "\n", style="dim")
        text.append(terminal(f"{e['seeds']} seeds per arm · trainer {trainer}") + "\n", style="dim")
        git = e["git"]
        if e["registered_at"]:
            where = (f"commit {(git['commit'] or 'none')[:12]}" + f" ({git['tree']})"
                     if git["in_repo"] else "outside git")
            intact = e["registration_verified"] and e.get("integrity") == "verified"
            line = f"registered {e['registered_at']} at {where}\nhash {e['registration_hash'][:16]}… "
            if intact:
                text.append(line + "verified\n", style="dim")
            else:
                text.append(line, style="dim")
                text.append("TAMPERED\n", style="bold reverse red")
            for finding in e.get("integrity_findings", [])[:3]:
                text.append(f"TAMPERED: {finding['row']}: {finding['field']}: {finding['problem']}\n", style="bold red")
        else:
            text.append("draft: not registered\n", style="yellow")
        for a in e["amendments"]:
            text.append(terminal(f"amended {a['at']}: {a['field']} {a['old']!r} → {a['new']!r} ({a['reason']})") + "\n",
                        style="italic")
        return text

    @staticmethod
    def verdict_text(v: dict[str, Any]) -> Text:
        text = Text()
        text.append_text(badge(v.get("state", v["verdict"])))  # the state word the list and the CLI use
        interval = "anytime-valid interval" if v["interval"] == "anytime" else "Welch interval"
        text.append(f"  {interval}: {terminal(v['interval_reason'])}\n")
        for c in v["comparisons"]:
            text.append_text(badge(c["verdict"]))
            text.append(terminal(f" {c['candidate_name']}: {c['sentence']}"))
            text.append("\n")
        if v.get("exploratory"):
            text.append(f"exploratory: {v['exploratory_reason']}\n", style="italic")
        if v.get("post_hoc"):
            late = v["post_hoc"]
            text.append(f"exploratory, {late['label']} (not the entry's verdict): ", style="italic")
            text.append_text(badge(late["reading"]["verdict"]))
            text.append("\n")
        return text

    @staticmethod
    def stats_text(view: dict[str, Any]) -> Text:
        """Per-arm numbers in columns that fit 80 columns, then each comparison as the verdict's
        sentence states it: candidate minus baseline, in metric units (the card says which way is
        better)."""
        text = Text(f"{'arm':<10} {'n':>3} {'excl':>4} {'mean':>9} {'± sd':>9} {'median':>9} {'IQM':>9} {'wall':>7}\n",
                    style="bold")
        for r in arm_rows(view):  # the same per-arm numbers the writeups print
            text.append(f"{r['arm'][:10]:<10} {r['n']:>3} {r['excluded']:>4} {figure(r['mean']):>9} {figure(r['sd']):>9}"
                        f" {figure(r['median']):>9} {figure(r['iqm']):>9} {duration(r['wall']):>7}\n")
        v, e = view["verdict"], view["entry"]
        sign = -1 if e["goal"] == "minimize" else 1  # improvements are stored with the better side positive
        for c in v["comparisons"]:
            boot = [sign * x for x in (c["bootstrap_low"], c["bootstrap_high"]) if x is not None]
            text.append(f"{c['candidate_name']} − {c['baseline_name']}: {figure(c['raw_effect'])}"
                        f" [{figure(c['raw_ci_low'])}, {figure(c['raw_ci_high'])}]\n", style="dim")
            text.append(f"  P(better) {figure(c['prob_improvement'], 3)} · p (Holm) {figure(c['p_value_holm'], 3)}"
                        + (f" · bootstrap [{figure(min(boot))}, {figure(max(boot))}]" if len(boot) == 2 else "") + "\n",
                        style="dim")
        return text

    @staticmethod
    def curves_text(curves: dict[str, Any], churn: dict[str, Any] | None) -> Text:
        text = Text()
        if curves:
            text.append(f"learning curves: mean {curves['name']} over seeds, [lowest, highest seed] at the end\n",
                        style="bold")
            for arm, values in curves["arms"].items():
                low, high = curves["low"][arm][-1], curves["high"][arm][-1]
                text.append(f"{arm[:12]:<12} {sparkline(values)}  {figure(values[0], 3)} → {figure(values[-1], 3)}"
                            f" [{figure(low, 3)}, {figure(high, 3)}]\n")
        else:
            text.append("no learning curves yet\n", style="dim")
        if churn:  # only where the trainer saved class probabilities: churn means nothing for a regression
            text.append("prediction difference / churn between seeds\n", style="bold")
            for arm, w in churn["within"].items():
                text.append(f"{arm[:12]:<12} within: PD {figure(w['prediction_difference'], 3)}, churn {figure(w['churn'], 3)}\n")
            for arm, b in churn["between"].items():
                text.append(f"{arm[:12]:<12} vs baseline: PD {figure(b['prediction_difference'], 3)}, churn {figure(b['churn'], 3)}\n")
        return text

    @staticmethod
    def audits_text(audits: list[dict[str, Any]], goal: str = "maximize") -> Text:
        if not audits:
            return Text("no audit yet: u reruns every arm on fresh committed seeds", style="dim")
        sign = -1 if goal == "minimize" else 1
        text = Text("audits: original beside a rerun on fresh seeds (candidate − baseline)\n", style="bold")
        for a in audits:
            state = a["outcome"] or f"{a['status']} ({a['finished']} of {a['runs']} runs)"
            text.append(f"audit {a['id']}: {state} · {a['seeds_per_arm']} seeds per arm\n")
            for c in a["candidates"]:
                o, u = c["original"], c["audit"]
                audit = "pending" if u is None else f"{u['verdict']} {change(u, sign)}"
                text.append(f"  {c['name']}: original {o['verdict']} {change(o, sign)} · audit {audit}\n", style="dim")
        return text

    @on(DataTable.RowSelected, "#runs")
    def open_run(self, event: DataTable.RowSelected) -> None:
        from logbook.tui.screens.run import RunScreen

        self.app.push_screen(RunScreen(int(event.row_key.value)))

    def action_page(self, direction: int) -> None:
        body = self.query_one("#entry-body", VerticalScroll)
        body.scroll_to(y=body.scroll_y + direction * max(1, body.size.height - 2))

    # ---- actions: each runs in a thread worker and reports what it did ----------------------

    @work(thread=True, group="action", exit_on_error=False)
    def preview(self, what: str, **kwargs: Any) -> None:
        """Work out what an action that queues runs would execute, for the confirmation dialog."""
        from logbook.engine.confirm import preview, queued_count

        store, ref = self.app.store, str(self.entry_id)
        shown = preview(store, ref, runs=queued_count(store, ref, what, kwargs.get("extra")))
        lines = shown.lines() if shown.commands else [
            f"{shown.entry}: trainer {self.view['entry']['trainer'].get('name') if self.view else ''} (installed plugin)",
            *shown.lines()[1:],
        ]
        if what == "audit":
            lines.append("  fresh seeds per arm chosen at start (power 0.9), hidden until the audit ends")
        self.post_message(LaunchPreviewed(what, kwargs, lines, shown.unconfirmed))

    def on_launch_previewed(self, message: LaunchPreviewed) -> None:
        titles = {"run": "Queue these runs?", "requeue": "Requeue these runs?", "audit": "Start an audit?"}

        def answered(yes: bool | None) -> None:
            if yes:
                self.act(message.what, confirmed=message.unconfirmed, **message.kwargs)

        self.app.push_screen(ConfirmScreen(titles[message.what], "\n".join(message.lines)), answered)

    @work(thread=True, group="action", exit_on_error=False)
    def act(self, what: str, confirmed: list | None = None, **kwargs: Any) -> None:
        from logbook.engine import queue
        from logbook.engine.confirm import record_confirmation

        store, ref = self.app.store, str(self.entry_id)
        record_confirmation(store, confirmed or [])
        if what == "run":
            ids = queue.enqueue(store, ref, kwargs.get("extra"))
            pid = queue.ensure_worker(store)
            text = f"queued {len(ids)} runs" + (f"; started worker {pid}" if pid else "")
        elif what == "cancel":
            counts = queue.cancel(store, ref)
            text = f"cancelled {counts.get('cancelled', 0)} queued, stopping {counts.get('stopping', 0)} running"
        elif what == "requeue":
            ids = queue.requeue(store, ref)
            pid = queue.ensure_worker(store) if ids else None
            text = f"requeued {len(ids)} runs" + (f"; started worker {pid}" if pid else "")
        elif what == "robustness":
            from logbook.entries.robustness import register_follow_up

            vary = [part.strip() for part in kwargs["vary"].split(";") if part.strip()]
            follow = register_follow_up(store, ref, vary, int(kwargs["seeds"]) if kwargs["seeds"].strip() else None)
            text = f"registered follow-up {follow.id} ({follow.slug}): open it and press r to run it"
        elif what == "audit":
            from logbook.entries.audit import start_audit

            started = start_audit(store, ref)
            queue.ensure_worker(store)
            text = f"audit {started['audit']}: {len(started['runs'])} runs on committed fresh seeds"
        else:
            raise ValueError(what)
        self.post_message(ActionFinished(text))
        self.load()

    def action_run(self) -> None:
        self.preview("run")

    def action_add_seeds(self) -> None:
        def submitted(values: dict | None) -> None:
            if values and values["seeds"].strip().isdigit():
                self.preview("run", extra=int(values["seeds"]))
            elif values is not None:
                self.notify("expected a whole number of seeds per arm", severity="error")

        self.app.push_screen(FormScreen("Add seeds per arm (judged with the anytime-valid interval)",
                                        [("seeds", "seeds per arm, e.g. 5")]), submitted)

    def action_cancel(self) -> None:
        self.act("cancel")

    def action_requeue(self) -> None:
        self.preview("requeue")

    def action_amend(self) -> None:
        store, ref = self.app.store, str(self.entry_id)

        def amend(values: dict[str, str]) -> str:
            from logbook.entries.registry import amend

            return f"amended {amend(store, ref, values['field'].strip(), values['value'], values['reason']).field}"

        self.app.push_screen(FormScreen("Amend the registered entry (dated, with a reason)", [
            Field("field", "Field: title, hypothesis, notes, tags, seeds, min_effect, alpha or arms.NAME", "min_effect"),
            Field("value", "New value (YAML: 0.02, [a, b], {lr: 0.01})", "0.02"),
            Field("reason", "Reason (kept with the amendment)", "why it changes")], submit=amend),
            lambda values: self.load() if values else None)

    def action_export(self) -> None:
        store, ref = self.app.store, str(self.entry_id)

        def export(values: dict[str, str]) -> str:
            return export_entry(store, ref, values["format"], values["folder"])

        self.app.push_screen(FormScreen("Export this entry", [
            Field("format", "Format", choices=EXPORT_FORMATS),
            Field("folder", "Folder (created if missing)", value=str(store.path.parent / "exports"))],
            submit=export, hint="Enter in the folder: export"))

    def action_audit(self) -> None:
        self.preview("audit")

    def action_robustness(self) -> None:
        def submitted(values: dict | None) -> None:
            if values:
                self.act("robustness", **values)

        self.app.push_screen(FormScreen("Does the verdict survive neighbouring settings? (a linked follow-up entry)", [
            ("vary", "settings: lr=x0.5,x2; hidden=48,96"), ("seeds", "seeds per arm (empty: the entry's)")]), submitted)
