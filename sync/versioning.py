"""The global version counter that orders every change phones pull.

Any ORM change to a synced record (from sync, the API, a worker or the CLI) gets the
version of its transaction, bumped once per transaction with a row lock on
PostgreSQL: a later version can never become visible before an earlier one, so a pull
cursor never skips a row (SYNC-NOTES: "global version"). Per-field versions are kept
too, for conflict detection.
"""

from __future__ import annotations

import secrets

from sqlalchemy import event, inspect, select, update
from sqlalchemy.orm import Session, scoped_session

from server.extensions import db
from server.models import SyncedMixin, SyncState, visit_participants

_KEY = "fieldvisit.version"
_UNTRACKED = {"version", "field_versions", "updated_at", "created_at", "id"}


def _plain(session: Session) -> Session:
    """The request's Session behind Flask-SQLAlchemy's scoped_session (session.info and
    the transaction belong to it, not to the proxy)."""
    return session() if isinstance(session, scoped_session) else session


def ensure_state(session: Session) -> SyncState:
    """The single SyncState row, created with a fresh epoch on a new database."""
    state = session.get(SyncState, 1)
    if state is None:
        state = SyncState(id=1, version=0, epoch=secrets.token_hex(8), purge_horizon=0)
        session.add(state)
        session.flush()
    return state


def current_version(session: Session) -> int:
    """The highest version committed (as seen by this session's snapshot)."""
    return session.execute(select(SyncState.version).where(SyncState.id == 1)).scalar() or 0


def transaction_version(session: Session) -> int:
    """This transaction's version: bumped on first use, then reused until commit.

    The number belongs to the outermost transaction, which holds the counter's row
    lock until it commits. If the savepoint in which the bump happened is rolled back,
    the bump is undone with it and the next change bumps again (see _undo_on_rollback),
    so no two transactions can ever write rows with the same version.
    """
    session = _plain(session)
    cached = session.info.get(_KEY)
    root = session.get_transaction()
    if cached is not None and cached[0] is root and root is not None and root.is_active:
        return cached[1]
    # No autoflush: a flush here (a push's updated records, while write_new_records asks
    # for the version before inserting the batch's new ones) would write the deferred
    # rows of new records (a new problem's stage change) before those records exist.
    with session.no_autoflush:
        result = session.execute(
            update(SyncState)
            .where(SyncState.id == 1)
            .values(version=SyncState.version + 1)
            .returning(SyncState.version)
        ).scalar()
    if result is None:
        ensure_state(session)
        return transaction_version(session)
    version = int(result)
    session.info[_KEY] = (session.get_transaction(), version, session.get_nested_transaction())
    return version


_DEFERRED = "fieldvisit.deferred_inserts"


def defer_insert(session: Session, table, row: dict) -> None:  # noqa: ANN001
    """Insert `row` into `table` with the next flush, in one executemany per table.

    For append-only rows (audit entries) that need no ORM identity: a batch of a few
    hundred records then costs one statement instead of a few hundred ORM objects.
    """
    session = _plain(session)
    session.info.setdefault(_DEFERRED, {}).setdefault(table, []).append(row)


def _write_deferred(session: Session) -> None:
    pending = session.info.pop(_DEFERRED, None)
    if pending:
        connection = session.connection()
        for table, rows in pending.items():
            connection.execute(table.insert(), rows)


_NEW = "fieldvisit.new_records"
_MISSING = object()


class NewRecord:
    """A synced record a sync push creates, kept as a plain object until the batch is
    written: one Core executemany per table instead of an ORM object per record (the
    unit of work was most of a push's cost). It reads and writes like a pending ORM
    object: an unset column reads None, and the model's column defaults fill in at
    the insert. `write_new_records` stamps the transaction's version.
    """

    def __init__(self, model: type, **values: object):
        self.__dict__["_model"] = model
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> object:  # only for attributes never set
        if name in self._model.__table__.c or name == "participants":
            return None
        raise AttributeError(name)


def add_new_record(session: Session, record: NewRecord) -> None:
    """Queue a new record for `write_new_records` (the push's fast path)."""
    session = _plain(session)
    session.info.setdefault(_NEW, []).append(record)


def queued_new_records(session: Session, model: type) -> list[NewRecord]:
    """The new records of `model` queued in this transaction and not yet written."""
    return [r for r in _plain(session).info.get(_NEW, ()) if r._model is model]


def written_version(session: Session) -> int:
    """The version this transaction wrote with, or the current one when it wrote no
    synced record (a push that changed nothing does not move the counter)."""
    session = _plain(session)
    cached = session.info.get(_KEY)
    root = session.get_transaction()
    if cached is not None and cached[0] is root and root is not None and root.is_active:
        return cached[1]
    return current_version(session)


def lock_for_writing(session: Session) -> None:
    """Take the database's write lock without moving the counter: on SQLite a no-op
    update of the counter row starts the write transaction, so every read after it is
    current; on PostgreSQL the row lock is taken later, at the version bump."""
    session.execute(update(SyncState).where(SyncState.id == 1).values(version=SyncState.version))


def _default(column) -> object:  # noqa: ANN001
    default = column.default
    if default is None:
        return None
    if default.is_callable:
        return default.arg(None)  # SQLAlchemy wraps zero-argument callables
    return default.arg


def write_new_records(session: Session) -> None:
    """Insert the queued new records, tables in dependency order, with this transaction's
    version; a visit's participants go into visit_participants."""
    session = _plain(session)
    pending = session.info.pop(_NEW, None)
    if not pending:
        return
    version = transaction_version(session)
    rows: dict = {}
    links = []
    for record in pending:
        record.version, record.field_versions = version, {}
        table = record._model.__table__
        values = record.__dict__
        rows.setdefault(table, []).append(
            {
                c.key: v if (v := values.get(c.key, _MISSING)) is not _MISSING else _default(c)
                for c in table.columns
            }
        )
        links.extend(
            {"visit_id": record.id, "user_id": user.id} for user in values.get("participants") or ()
        )
    connection = session.connection()
    for table in db.metadata.sorted_tables:
        if table in rows:
            connection.execute(table.insert(), rows[table])
    if links:
        connection.execute(visit_participants.insert(), links)


@event.listens_for(Session, "after_flush")
def _deferred_after_flush(session: Session, flush_context) -> None:  # noqa: ANN001
    # After the flush: the rows may refer to records the flush has just inserted.
    _write_deferred(session)


@event.listens_for(Session, "before_commit")
def _deferred_before_commit(session: Session) -> None:
    _write_deferred(session)


@event.listens_for(Session, "after_soft_rollback")
def _undo_on_rollback(session: Session, previous_transaction) -> None:  # noqa: ANN001
    session.info.pop(_DEFERRED, None)  # rows of rolled-back work must not be written
    session.info.pop(_NEW, None)
    cached = session.info.get(_KEY)
    if cached is None:
        return
    txn = cached[2]
    while txn is not None:
        if txn is previous_transaction:
            session.info.pop(_KEY, None)
            return
        txn = txn.parent
    if previous_transaction is cached[0]:
        session.info.pop(_KEY, None)


@event.listens_for(Session, "before_flush")
def _stamp_versions(session: Session, flush_context, instances) -> None:  # noqa: ANN001
    new = set(session.new)  # the property builds a new set on every access
    changed = [
        obj
        for obj in list(new) + list(session.dirty)
        if isinstance(obj, SyncedMixin) and (obj in new or session.is_modified(obj))
    ]
    if not changed:
        return
    version = transaction_version(session)
    for obj in changed:
        obj.version = version
        if obj in new:
            # A field missing from field_versions was last set when the record was
            # created: every device that can edit the record has seen that version.
            obj.field_versions = {}
            continue
        state = inspect(obj)
        fields = dict(obj.field_versions or {})
        for attr in state.mapper.column_attrs:
            key = attr.key
            if key not in _UNTRACKED and state.attrs[key].history.has_changes():
                fields[key] = version
        # A visit's participants are a collection, not a column: tracked too, so a stale
        # full list that overwrites someone's addition lands in the conflict log.
        if "participants" in state.attrs and state.attrs["participants"].history.has_changes():
            fields["participants"] = version
        obj.field_versions = fields
