"""Code that runs is shown before it runs: the confirmation of command and module trainers.

An entry file can name any command (``trainer.command``) or any importable callable
(``trainer.name: package.module:function``); a shared entry file could run anything. So before
such a trainer first runs in a logbook, the verbs that queue runs (run, requeue, audit, rerun; the
app's keys too) show the exact command line per arm, with the placeholders filled for the first
seed, and ask. A confirmation is remembered in the logbook per digest of the arm's trainer spec and
config, so a changed command asks again. Trainers installed as plugins (entry points, such as the
built-in ones) are installed code and need no confirmation.
"""

from __future__ import annotations

import getpass
import shlex
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from logbook.db.engine import Store
from logbook.db.models import Arm, ConfirmedCommand, Run, utcnow
from logbook.db.queries import arms_of, resolve_entry
from logbook.entries.registry import canonical_json, require_registered, sha256_hex

RUN_FOLDER_SHOWN = "<run folder>"


@dataclass(frozen=True)
class ShownCommand:
    """What one arm will execute, as shown to the person who confirms it."""

    arm: str
    kind: str  # "command" (a program) or "module" (a Python callable imported from the repository)
    text: str  # the exact command line for the first seed, or the callable and its config
    digest: str  # what a confirmation is remembered by


@dataclass(frozen=True)
class LaunchPreview:
    """Everything a person should see before runs are queued."""

    entry: str
    commands: list[ShownCommand]  # every arm's, confirmed before or not
    unconfirmed: list[ShownCommand]
    runs: int | None  # how many runs the action queues (None: decided when it starts, e.g. an audit)
    hours: float | None  # estimated compute hours, from the entry's finished runs (None: none finished yet)

    def lines(self) -> list[str]:
        """The preview as text lines (the CLI prints them; the app shows them in its dialog)."""
        out = [f"{self.entry}: these commands run for the first time in this logbook:" if self.unconfirmed
               else f"{self.entry}: commands (confirmed before):"]
        for shown in self.commands:
            mark = "new" if shown in self.unconfirmed else "ok "
            out.append(f"  [{mark}] {shown.arm}: {shown.text}")
        if self.runs is not None:
            estimate = (f", about {self.hours:.2g} compute hours at the entry's mean run time"
                        if self.hours is not None else ", run time unknown until a run finishes")
            out.append(f"  {self.runs} runs{estimate}")
        return out


def needs_confirmation(trainer: dict[str, Any]) -> str | None:
    """The kind of user code a trainer spec runs ("command" or "module"), or None for a plugin."""
    if "command" in trainer:
        return "command"
    if ":" in str(trainer.get("name", "")):
        return "module"
    return None


def shown_command(arm: str, trainer: dict[str, Any], config: dict[str, Any], seed: int) -> ShownCommand | None:
    """The command line (or callable) one arm runs for ``seed``; None when it needs no confirmation."""
    kind = needs_confirmation(trainer)
    if kind is None:
        return None
    digest = sha256_hex(canonical_json({"trainer": trainer, "config": config}))
    if kind == "command":
        from trainers.command import build_argv

        try:
            text = shlex.join(build_argv(trainer["command"], seed, Path(RUN_FOLDER_SHOWN), config))
        except (KeyError, ValueError, IndexError) as exc:  # a template that cannot be filled still gets shown
            text = f"{trainer['command']}  (placeholders could not be filled: {exc})"
    else:
        text = f"python: {trainer['name']}(config={canonical_json(config)}, seed={seed})"
    return ShownCommand(arm=arm, kind=kind, text=text, digest=digest)


def preview(store: Store, ref: str, *, runs: int | None) -> LaunchPreview:
    """What an action on ENTRY would execute, which of it is unconfirmed, and what it would cost."""
    with store.session() as session:
        entry = resolve_entry(session, ref)
        require_registered(entry)
        arms = arms_of(session, entry.id)
        seed = (entry.planned_seeds or [0])[0]
        commands = [c for arm in arms if (c := shown_command(arm.name, arm.trainer or entry.trainer, arm.config, seed))]
        known = set(session.exec(
            select(ConfirmedCommand.digest).where(col(ConfirmedCommand.digest).in_([c.digest for c in commands]))
        ).all()) if commands else set()
        walls = session.exec(
            select(Run.wall_time_s).join(Arm, Arm.id == Run.arm_id)
            .where(Arm.hypothesis_id == entry.id, col(Run.wall_time_s).is_not(None))
        ).all()
        slug = entry.slug
    hours = (runs * (sum(walls) / len(walls)) / 3600.0) if walls and runs is not None else None
    return LaunchPreview(entry=slug, commands=commands, unconfirmed=[c for c in commands if c.digest not in known],
                         runs=runs, hours=hours)


def record_confirmation(store: Store, commands: list[ShownCommand]) -> None:
    """Remember that these commands were shown and confirmed in this logbook."""
    if not commands:
        return
    who = f"{getpass.getuser()}@{socket.gethostname()}"
    with store.session(write=True) as session:
        known = set(session.exec(
            select(ConfirmedCommand.digest).where(col(ConfirmedCommand.digest).in_([c.digest for c in commands]))
        ).all())
        for shown in commands:
            if shown.digest not in known:
                session.add(ConfirmedCommand(digest=shown.digest, kind=shown.kind, shown=shown.text,
                                             confirmed_by=who, confirmed_at=utcnow()))
                known.add(shown.digest)
        session.commit()


def queued_count(store: Store, ref: str, what: str, extra: int | None = None) -> int | None:
    """How many runs an action would queue: the missing planned seeds, extra seeds, or the retries."""
    from logbook.db.runstatus import RETRYABLE

    with store.session() as session:
        entry = resolve_entry(session, ref)
        n_arms = len(arms_of(session, entry.id))
        if what == "run" and extra:
            return extra * n_arms
        if what == "run":
            have = set(session.exec(select(Run.arm_id, Run.seed).join(Arm, Arm.id == Run.arm_id)
                                    .where(Arm.hypothesis_id == entry.id)).all())
            arms = arms_of(session, entry.id)
            return sum((arm.id, seed) not in have for arm in arms for seed in entry.planned_seeds or [])
        if what == "requeue":
            return len(session.exec(select(Run.id).join(Arm, Arm.id == Run.arm_id)
                                    .where(Arm.hypothesis_id == entry.id, col(Run.status).in_(RETRYABLE))).all())
    return None


def entry_of_run(store: Store, run_id: int) -> str | None:
    """The id (as text) of the entry a run belongs to, or None when there is no such run."""
    with store.session() as session:
        found = session.exec(select(Arm.hypothesis_id).join(Run, Run.arm_id == Arm.id).where(Run.id == run_id)).first()
    return None if found is None else str(found)
