"""Withdrawing an entry: a dated amendment that says the entry should not count, and why.

An entry registered by mistake (a test, a duplicate, a broken plan) cannot be deleted: deleting
it would make the record dishonest, and the triggers refuse it. Withdrawing appends an amendment
(field ``withdrawn``, with its reason) in the entry's hash chain, like any amendment; nothing of
the entry changes. Withdrawn entries leave the default list and the results of whole-logbook
exports (a "Withdrawn" section lists them with the date and reason), `show` and `verdict` say
WITHDRAWN, and nothing more is run or audited for them.
"""

from __future__ import annotations

from sqlmodel import Session

from logbook.db.engine import Store
from logbook.db.models import Amendment, Hypothesis
from logbook.db.queries import WITHDRAWN, amendments_of, resolve_entry, withdrawal
from logbook.entries.registry import record_amendment
from logbook.errors import InputError


def withdraw(store: Store, ref: str, reason: str) -> Amendment:
    """Withdraw a registered entry: append the dated ``withdrawn`` amendment and link it into the
    entry's chain in one transaction. A draft, an empty reason, or a second withdrawal is refused."""
    if not reason or not reason.strip():
        raise InputError("--reason: expected a non-empty reason for withdrawing the entry")
    with store.session(write=True) as session:
        entry = resolve_entry(session, ref)
        if entry.registered_at is None:
            raise InputError(f"ENTRY: {entry.slug} is a draft; expected a registered entry (a draft is not part of the record)")
        earlier = withdrawal(amendments_of(session, entry.id))
        if earlier is not None:
            raise InputError(f"ENTRY: {entry.slug}: already withdrawn at {earlier['at']} ({earlier['reason']}); "
                             "expected an entry that is not withdrawn")
        return record_amendment(session, entry, WITHDRAWN, False, True, reason)


def require_not_withdrawn(session: Session, entry: Hypothesis, doing: str) -> None:
    """Refuse (exit 2) to run or audit a withdrawn entry, naming when and why it was withdrawn."""
    found = withdrawal(amendments_of(session, entry.id))
    if found is not None:
        raise InputError(f"ENTRY: {entry.slug}: withdrawn at {found['at']} ({found['reason']}); "
                         f"expected an entry that is not withdrawn to {doing}")
