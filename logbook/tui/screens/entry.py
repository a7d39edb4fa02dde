"""The entry screen: the registered hypothesis, every seed's outcome, the verdict, and actions."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static

from logbook.entries.pilot import delta_text
from logbook.entries.states import verdict_state
from logbook.export.escape import terminal
from logbook.export.markdown import arm_rows
from logbook.db.runstatus import ACTIVE, RETRYABLE
from logbook.tui.messages import ActionFinished, EntryLoaded, LaunchPreviewed
from logbook.tui.screens.base import BaseScreen
from logbook.tui.screens.modals import ConfirmScreen, FormScreen
from logbook.tui.study_widgets import StudyPanel
from logbook.tui.widgets import CursorTable, Distribution, badge, number, refill_table, retro_badge, seed_text, sparkline


def trimmed(text: Text) -> Text:
    """The text without its final newline (a card ends at its last line)."""
    text.rstrip()
    return text


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
        for column in ("run", "arm", "seed", "origin", "status", "value", "time (s)", "note"):
            table.add_column(column, key=column)
        table.focus()  # arrows walk the runs, Enter opens one, PageUp/PageDown scroll the page
        self.load()
        self.set_interval(self.app.refresh_s, self.load)

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load(self) -> None:
        from logbook.tui.data import entry_view

        self.post_message(EntryLoaded(entry_view(self.app.store, self.entry_id)))

    def on_entry_loaded(self, message: EntryLoaded) -> None:
        self.view = view = message.view
        e, v = view["entry"], view["verdict"]
        self.title, self.sub_title = terminal(e["title"]), f"{e['slug']} · {e['status']}"
        self.query_one("#card", Static).update(trimmed(self.card(e, v)))
        self.query_one("#verdict-panel", Static).update(trimmed(self.verdict_text({**v, "state": verdict_state(v, e["status"])})))
        self.query_one(Distribution).show(
            [(a["name"], [x if x is not None else float("nan") for x in v["arms"][a["name"]]["values"]],
              v["arms"][a["name"]]["excluded"]) for a in e["arms"]])
        self.query_one("#stats", Static).update(trimmed(self.stats_text(view)))
        self.query_one("#curves", Static).update(trimmed(self.curves_text(view["curves"], v.get("churn"))))
        self.query_one("#audits", Static).update(trimmed(self.audits_text(view["audits"])))
        self.query_one(StudyPanel).show(view.get("studies"))
        refill_table(self.query_one("#runs", DataTable), (
            (str(r["id"]), (str(r["id"]), r["arm"], seed_text(r["seed"]), r["origin"],
                            Text(r["status"], style="red" if r["status"] in RETRYABLE else ("yellow" if r["status"] in ACTIVE else "")),
                            number(r["value"]), number(r["wall_time_s"], 3), Text(r["error"][0][:40], style="dim")))
            for r in view["runs"]))

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
        text.append(terminal(f"{e['metric']} ({direction}) · δ = {delta_text(e, number)} · α = {number(e['alpha'])}, "
                             f"family of {v['family_size']} · {e['seeds']} seeds per arm · "
                             f"trainer {trainer}") + "\n", style="dim")
        git = e["git"]
        if e["registered_at"]:
            where = (f"commit {(git['commit'] or 'none')[:12]}" + f" ({git['tree']})"
                     if git["in_repo"] else "outside git")
            intact = e["registration_verified"] and e.get("integrity") == "verified"
            line = f"registered {e['registered_at']} at {where} · hash {e['registration_hash'][:16]}… "
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
            if c["verdict"] == "inconclusive" and c.get("seeds_needed"):
                text.append(f" (about {c['seeds_needed']} seeds per arm would settle it)", style="bold")
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
        text = Text("arm            n  excl  mean ± sd            median    IQM       wall s\n", style="bold")
        for r in arm_rows(view):  # the same per-arm numbers the writeups print
            text.append(f"{r['arm'][:12]:<12} {r['n']:>3} {r['excluded']:>5}  {number(r['mean']):>9} ± {number(r['sd']):<9}"
                        f" {number(r['median']):>9} {number(r['iqm']):>9} {number(r['wall'], 3):>8}\n")
        v = view["verdict"]
        for c in v["comparisons"]:
            text.append(f"{c['candidate_name']}: effect {number(c['effect'])} [{number(c['ci_low'])}, {number(c['ci_high'])}]"
                        f" · P(C>B) {number(c['prob_improvement'], 3)} · p(Holm) {number(c['p_value_holm'], 3)}"
                        f" · bootstrap [{number(c['bootstrap_low'])}, {number(c['bootstrap_high'])}]\n", style="dim")
        return text

    @staticmethod
    def curves_text(curves: dict[str, Any], churn: dict[str, Any] | None) -> Text:
        text = Text()
        if curves:
            text.append(f"learning curves: mean {curves['name']} over seeds (band: lowest to highest seed at the end)\n",
                        style="bold")
            for arm, values in curves["arms"].items():
                low, high = curves["low"][arm][-1], curves["high"][arm][-1]
                text.append(f"{arm[:12]:<12} {sparkline(values)}  {number(values[0], 3)} → {number(values[-1], 3)}"
                            f" [{number(low, 3)}, {number(high, 3)}]\n")
        else:
            text.append("no learning curves yet\n", style="dim")
        if churn:
            text.append("prediction difference / churn between seeds\n", style="bold")
            for arm, w in churn["within"].items():
                text.append(f"{arm[:12]:<12} within: PD {number(w['prediction_difference'], 3)}, churn {number(w['churn'], 3)}\n")
            for arm, b in churn["between"].items():
                text.append(f"{arm[:12]:<12} vs baseline: PD {number(b['prediction_difference'], 3)}, churn {number(b['churn'], 3)}\n")
        return text

    @staticmethod
    def audits_text(audits: list[dict[str, Any]]) -> Text:
        if not audits:
            return Text("no audit yet: u reruns every arm on fresh committed seeds", style="dim")
        text = Text("audits: original beside a rerun on fresh seeds\n", style="bold")
        for a in audits:
            state = a["outcome"] or f"{a['status']} ({a['finished']} of {a['runs']} runs)"
            text.append(f"audit {a['id']}: {state} · {a['seeds_per_arm']} seeds per arm\n")
            for c in a["candidates"]:
                o, u = c["original"], c["audit"]
                audit = "pending" if u is None else f"{u['verdict']} {number(u['effect'])} [{number(u['ci_low'])}, {number(u['ci_high'])}]"
                text.append(f"  {c['name']}: original {o['verdict']} {number(o['effect'])} [{number(o['ci_low'])}, "
                            f"{number(o['ci_high'])}] · audit {audit}\n", style="dim")
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
        elif what == "amend":
            from logbook.entries.registry import amend

            amendment = amend(store, ref, kwargs["field"], kwargs["value"], kwargs["reason"])
            text = f"amended {amendment.field}"
        elif what == "export":
            from logbook.export.writer import export

            out = store.path.parent / "exports"
            written = export(store, [ref], all_entries=False, verdicts=None, fmt="md", out=out)
            text = f"wrote {written[0]}"
        elif what == "robustness":
            from logbook.entries.studies import register_follow_up

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
        def submitted(values: dict | None) -> None:
            if values:
                self.act("amend", **values)

        self.app.push_screen(FormScreen("Amend the registered entry (dated, with a reason)", [
            ("field", "field: title, hypothesis, notes, tags, seeds, min_effect, alpha, arms.NAME"),
            ("value", "value (YAML: 0.02, [a, b], {lr: 0.01})"), ("reason", "reason")]), submitted)

    def action_export(self) -> None:
        self.act("export")

    def action_audit(self) -> None:
        self.preview("audit")

    def action_robustness(self) -> None:
        def submitted(values: dict | None) -> None:
            if values:
                self.act("robustness", **values)

        self.app.push_screen(FormScreen("Does the verdict survive neighbouring settings? (a linked follow-up entry)", [
            ("vary", "settings: lr=x0.5,x2; hidden=48,96"), ("seeds", "seeds per arm (empty: the entry's)")]), submitted)
