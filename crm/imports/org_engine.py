"""Importing organizations: matched by name (and alias, acronym), with parents and issue areas."""

from types import SimpleNamespace

from sqlalchemy import insert, select
from sqlalchemy.orm import selectinload

from crm.common.text import fold, single_line, sort_name
from crm.common.types import utcnow
from crm.extensions import db
from crm.imports.engine import Engine, field_changes, insert_orgs
from crm.imports.fields import org_key as normalize_org_name
from crm.imports.outcomes import RowOutcome
from crm.imports.resolving import AreaResolver
from crm.organizations.models import IssueArea, Organization, organization_issue_areas


class OrgEngine(Engine):
    """Organizations, matched by name (and alias, acronym) with the organization matcher."""

    kind = "orgs"
    org_fields = ("name", "parent")
    FIELDS = ("acronym", "org_type", "scope", "city", "state", "country", "website", "notes", "parent_id")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.areas = AreaResolver(self.options.create_issue_areas, self.changes, self.new_id if self.dry else None)
        # A dry run's new organizations by id, as plain values (later rows naming them update these).
        self.unsaved: dict[int, SimpleNamespace] = {}

    def process(self, chunk: list[tuple[int, list[str]]]) -> list[RowOutcome]:
        """Outcomes of a chunk of rows, written to the session."""
        parsed = []
        for row, cells in chunk:
            values, errors = self.parse(cells)
            ref = self.resolve_org(values, "name", errors, create=True) if "name" in values else None
            parent = self.resolve_org(values, "parent", errors, create=False)
            if parent is not None:
                values["parent_id"] = parent.org_id
            if "issue_areas" in values:
                ids, unknown = self.areas.resolve(values["issue_areas"], row)
                values["issue_areas"] = ids
                if unknown:
                    errors.append((self.header("issue_areas"),
                                   f"unknown issue area{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
                                   f"(choose 'create missing issue areas' to add them)."))
            parsed.append((row, values, errors, ref))
        matched_ids = {ref.org_id for _, _, e, ref in parsed if ref is not None and ref.state != "none" and not e}
        existing = {o.id: o for o in db.session.scalars(
            select(Organization).where(Organization.id.in_(matched_ids))
            .options(selectinload(Organization.issue_areas)))} if matched_ids else {}
        mode = self.options.on_duplicate
        outcomes: list[RowOutcome] = []
        pending: dict[str, dict] = {}
        created_rows: dict[str, RowOutcome] = {}
        for row, values, errors, ref in parsed:
            outcome = RowOutcome(row, "error", errors=errors)
            outcomes.append(outcome)
            if errors:
                outcome.action = self.action_for(errors)
                continue
            key = normalize_org_name(values["name"])
            data = {k: values[k] for k in (*self.FIELDS, "issue_areas") if k in values}
            if key in pending:
                target = pending[key]
                changes = field_changes(target, data, mode) if mode != "skip" else {}
                target.update(changes)
                outcome.action = "update" if changes else "duplicate"
                outcome.record = f"same organization as row {created_rows[key].row}"
            elif ref is not None and ref.state != "none":
                org = existing.get(ref.org_id) or self.unsaved.get(ref.org_id) \
                    or db.session.get(Organization, ref.org_id)
                if self._makes_cycle(org, data, mode):
                    outcome.action = "error"
                    outcome.errors.append((self.header("parent"), self._cycle_message(org, values["parent"])))
                    continue
                outcome.action, outcome.record = self._update(org, data, row, mode)
            else:
                data["name"] = values["name"]
                pending[key] = data
                created_rows[key] = outcome
                outcome.action = "create"
        self._insert(pending, created_rows)
        self.flush()
        return outcomes

    def _makes_cycle(self, org, data: dict, mode: str) -> bool:
        """Whether the parent this row would give `org` makes its parent chain come back to it: through the
        database or through this file's earlier rows (read from the records this import changed in memory)."""
        from crm.organizations.editing import makes_parent_cycle

        if mode == "skip" or "parent_id" not in field_changes({"parent_id": org.parent_id}, data, mode):
            return False

        def parent_of(org_id: int) -> int | None:
            known = self.unsaved.get(org_id)
            if known is None:
                with db.session.no_autoflush:  # a dry run writes nothing, not even to read
                    known = db.session.get(Organization, org_id)
            return known.parent_id if known is not None else None

        return makes_parent_cycle(org.id, data["parent_id"], parent_of)

    @staticmethod
    def _cycle_message(org, parent_name: str) -> str:
        from crm.organizations.editing import PARENT_CYCLE

        return f"'{parent_name}' is {org.name} or one of its affiliates. {PARENT_CYCLE}"

    def _update(self, org: Organization, data: dict, row: int, mode: str) -> tuple[str, str]:
        """Apply a duplicate row to an existing organization as the user chose; (action, record)."""
        record_text = f"organization {org.id} ({org.name})"
        if mode == "skip":
            return "duplicate", record_text
        current = {k: getattr(org, k) for k in self.FIELDS}
        current["issue_areas"] = sorted(a.id for a in org.issue_areas)
        if "issue_areas" in data:
            data["issue_areas"] = sorted(data["issue_areas"])
        changes = field_changes(current, data, mode)
        if not changes:
            return "duplicate", record_text
        before = {k: current[k] for k in changes}
        for key, value in changes.items():
            if key == "issue_areas" and isinstance(org, SimpleNamespace):
                org.issue_areas = [SimpleNamespace(id=area_id) for area_id in value]
            elif key == "issue_areas":
                org.issue_areas = list(db.session.scalars(select(IssueArea).where(IssueArea.id.in_(value))))
            else:
                setattr(org, key, value)
        if "acronym" in changes and isinstance(org, Organization):
            from crm.organizations.editing import refresh_search_text

            refresh_search_text(org)
        self.changes.updated("organization", org.id, row, before, changes)
        return "update", record_text

    def _insert(self, pending: dict[str, dict], created_rows: dict[str, RowOutcome]) -> None:
        """Insert the chunk's new organizations and their issue areas."""
        if not pending:
            return
        now = utcnow()
        parent_acronyms = {}
        parent_ids = {d["parent_id"] for d in pending.values() if d.get("parent_id")}
        if parent_ids:
            parent_acronyms = dict(db.session.execute(
                select(Organization.id, Organization.acronym).where(Organization.id.in_(parent_ids))).all())
        rows = []
        for data in pending.values():
            name = single_line(data["name"])[:300]
            search = [name, data.get("acronym") or "", parent_acronyms.get(data.get("parent_id")) or ""]
            rows.append({"name": name, "sort_name": sort_name(name)[:300],
                         "search_text": " | ".join(fold(p) for p in search if p),
                         **{k: data.get(k) for k in self.FIELDS if k != "notes"}, "notes": data.get("notes") or ""})
        if self.dry:
            ids = [self.new_id() for _ in rows]
            for row, org_id, data in zip(rows, ids, pending.values(), strict=True):
                self.unsaved[org_id] = SimpleNamespace(id=org_id, **row, issue_areas=[
                    SimpleNamespace(id=area_id) for area_id in data.get("issue_areas", [])])
        else:
            ids = insert_orgs(rows, now)
        links = []
        for (key, data), org_id in zip(pending.items(), ids, strict=True):
            outcome = created_rows[key]
            self.describe(outcome, "organization", org_id, data["name"])
            self.orgs.created(data["name"], org_id)
            self.changes.created("organization", org_id, outcome.row)
            links.extend({"organization_id": org_id, "issue_area_id": a} for a in data.get("issue_areas", []))
        if links and not self.dry:
            db.session.execute(insert(organization_issue_areas), links)
