"""An import's batch: the ImportChange rows written as it runs (what it created and changed), the list of past
imports, and undoing one."""

from collections.abc import Iterator
from datetime import date, datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import selectinload

from crm.audit.services import record
from crm.common.types import utcnow
from crm.contacts.models import Contact
from crm.extensions import db
from crm.imports.models import ImportBatch, ImportChange
from crm.imports.options import ImportError_
from crm.letters.models import Signature
from crm.organizations.models import IssueArea, Organization


def jsonable(value):
    """A field value as it can be kept in an ImportChange."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


class Changes:
    """ImportChange rows for one batch, written in bulk: one row per changed record, one per chunk of created ones."""

    def __init__(self, batch_id: int | None, dry: bool = False):
        self.batch_id = batch_id
        self.dry = dry
        self.pending: list[dict] = []
        self.created_ids: dict[str, list[int]] = {}

    def created(self, entity_type: str, entity_id: int, row: int | None = None) -> None:
        """Tag a record this import created."""
        self.created_ids.setdefault(entity_type, []).append(entity_id)

    def updated(self, entity_type: str, entity_id: int, row: int, before: dict, after: dict) -> None:
        """Tag a record this import changed, with the old values of the fields it changed."""
        self.pending.append({"batch_id": self.batch_id, "entity_type": entity_type, "entity_id": entity_id,
                             "action": "update", "row": row, "ids": None,
                             "before": {k: jsonable(v) for k, v in before.items()},
                             "after": {k: jsonable(v) for k, v in after.items()}})

    def flush(self) -> None:
        """Write what is pending."""
        for entity_type, ids in self.created_ids.items():
            self.pending.append({"batch_id": self.batch_id, "entity_type": entity_type, "entity_id": None,
                                 "action": "create", "row": None, "ids": ids, "before": None, "after": None})
        self.created_ids = {}
        if self.dry:
            self.pending = []
        if self.pending:
            db.session.execute(insert(ImportChange.__table__), self.pending)
            self.pending = []


def list_batches(page: int = 1, per_page: int = 20):
    """Past imports, newest first."""
    return db.paginate(select(ImportBatch).options(selectinload(ImportBatch.user))
                       .order_by(ImportBatch.id.desc()), page=page, per_page=per_page, error_out=False)


def get_batch(batch_id: int) -> ImportBatch | None:
    """One import."""
    return db.session.get(ImportBatch, batch_id)


# --- undo -------------------------------------------------------------------------------------------------------

_MODELS = {"contact": Contact, "organization": Organization, "signature": Signature, "issue_area": IssueArea}


def _restore_value(entity_type: str, key: str, value):
    """A value from ImportChange.before as the model's attribute wants it."""
    if key == "signed_at" and value:
        return datetime.fromisoformat(value)
    return value


def created_ids(batch_id: int, entity_type: str) -> list[int]:
    """The ids of the records of one type an import created."""
    ids: list[int] = []
    for part in db.session.scalars(select(ImportChange.ids).where(ImportChange.batch_id == batch_id,
                                                                  ImportChange.entity_type == entity_type,
                                                                  ImportChange.action == "create")):
        ids.extend(part or [])
    return ids


def new_organizations(batch: ImportBatch, shown: int = 10) -> tuple[int, list[tuple[int, str]]]:
    """The organizations an import of contacts or signatures created for its rows: how many, and the first
    `shown` of them that still exist, as (id, name)."""
    if batch.kind == "orgs":  # its own rows are organizations: counted as created already
        return 0, []
    ids = created_ids(batch.id, "organization")
    names = dict(db.session.execute(select(Organization.id, Organization.name).where(
        Organization.id.in_(ids[:shown]))).all()) if ids else {}
    return len(ids), [(org_id, names[org_id]) for org_id in ids[:shown] if org_id in names]


def _parts(ids: list[int], size: int = 1000) -> Iterator[list[int]]:
    """ids in lists of `size` (for IN clauses)."""
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def undo_blockers(batch: ImportBatch) -> list[str]:
    """Why an import cannot be undone safely (records made since depend on what it created), or []."""
    orgs = created_ids(batch.id, "organization")
    if not orgs:
        return []
    problems = []
    for label, model, entity_type in (("contact", Contact, "contact"), ("signature", Signature, "signature")):
        ours = set(created_ids(batch.id, entity_type))
        foreign = sum(1 for part in _parts(orgs) for record_id in db.session.scalars(
            select(model.id).where(model.organization_id.in_(part))) if record_id not in ours)
        if foreign:
            problems.append(f"{foreign} {label}(s) added since belong to organizations this import created.")
    return problems


def undo_import(batch_id: int, user_id: int | None = None) -> ImportBatch:
    """Undo a committed import in one transaction: restore changed fields, delete created records."""
    batch = db.session.get(ImportBatch, batch_id)
    if batch is None:
        raise ImportError_("No such import.")
    if batch.status != "committed":
        raise ImportError_("This import was already undone.")
    blockers = undo_blockers(batch)
    if blockers:
        raise ImportError_("This import cannot be undone: " + " ".join(blockers))
    try:
        updates = db.session.scalars(select(ImportChange).where(ImportChange.batch_id == batch.id,
                                                                ImportChange.action == "update")
                                     .order_by(ImportChange.id.desc()))
        # A contact the import demoted becomes primary again only once the import's own primaries are gone (the
        # one-active-primary index checks each statement): those restorations wait until the end.
        promotions = []
        for change in updates:
            target = db.session.get(_MODELS[change.entity_type], change.entity_id)
            if target is None:
                continue
            for key, value in (change.before or {}).items():
                if key == "issue_areas":
                    target.issue_areas = list(db.session.scalars(select(IssueArea).where(IssueArea.id.in_(value))))
                elif change.entity_type == "contact" and key == "is_primary" and value:
                    promotions.append(target)
                else:
                    setattr(target, key, _restore_value(change.entity_type, key, value))
        db.session.flush()
        for entity_type in ("signature", "contact", "organization", "issue_area"):
            model = _MODELS[entity_type]
            for part in _parts(created_ids(batch.id, entity_type)):
                db.session.execute(delete(model).where(model.id.in_(part)).execution_options(
                    synchronize_session=False))
        created_contacts = set(created_ids(batch.id, "contact"))
        for target in promotions:
            if target.id not in created_contacts:  # a contact this import made and then demoted is gone
                target.is_primary = True
        batch.status, batch.undone_at = "undone", utcnow()
        record("undo", "import_batch", batch.id, user_id=user_id,
               summary=f"Undid import {batch.id} ({batch.kind}, {batch.filename}): removed {batch.created} "
                       f"created record(s), restored {batch.updated}.")
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    db.session.expire_all()
    return batch
