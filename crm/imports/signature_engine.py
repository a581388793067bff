"""Importing the signatures of one letter; an organization not found is created."""


from sqlalchemy import select

from crm.common.text import single_line
from crm.common.types import utcnow
from crm.extensions import db
from crm.imports.engine import Engine, field_changes
from crm.imports.fields import org_key as normalize_org_name
from crm.imports.outcomes import RowOutcome
from crm.letters.models import Letter, Signature


class SignatureEngine(Engine):
    """Signatures of one letter; an organization not found is created."""

    kind = "signatures"
    org_fields = ("organization",)
    FIELDS = ("listed_name", "role", "status", "signed_at")

    def __init__(self, *args, letter: Letter, **kwargs):
        super().__init__(*args, **kwargs)
        self.letter = letter
        # A dry run's new signatures by organization id (never added to the session).
        self.unsaved: dict[int, Signature] = {}

    def process(self, chunk: list[tuple[int, list[str]]]) -> list[RowOutcome]:
        """Outcomes of a chunk of rows, written to the session."""
        outcomes: list[RowOutcome] = []
        mode = self.options.on_duplicate
        work = []
        new_orgs: dict[str, tuple[str, int]] = {}
        for row, cells in chunk:
            values, errors = self.parse(cells)
            if values.get("letter") and values["letter"] != self.letter.slug:
                errors.append((self.header("letter"), f"is '{values['letter']}', not the letter being imported "
                                                      f"({self.letter.slug})."))
            ref = self.resolve_org(values, "organization", errors, create=True)
            outcome = RowOutcome(row, self.action_for(errors) if errors else "create", errors=errors)
            outcomes.append(outcome)
            if not errors:
                if ref.state == "none":
                    new_orgs.setdefault(normalize_org_name(values["organization"]), (values["organization"], row))
                work.append((outcome, values))
        self.create_orgs(new_orgs)
        org_ids = {self.orgs.get(v["organization"]).org_id for _, v in work}
        existing = {s.organization_id: s for s in db.session.scalars(
            select(Signature).where(Signature.letter_id == self.letter.id,
                                    Signature.organization_id.in_(org_ids)))} if org_ids else {}
        existing.update((org_id, self.unsaved[org_id]) for org_id in org_ids if org_id in self.unsaved)
        created: list[tuple[RowOutcome, Signature]] = []
        for outcome, values in work:
            outcome.org = self.orgs.get(values["organization"])  # matched, or created just above
            org_id = outcome.org.org_id
            data = {"listed_name": values.get("listed_as"), "role": values.get("role"),
                    "status": values.get("status"), "signed_at": values.get("signed_at")}
            data = {k: v for k, v in data.items() if v is not None}
            signature = existing.get(org_id)
            if signature is None:
                signature = Signature(letter_id=self.letter.id, organization_id=org_id,
                                      listed_name=single_line(data.get("listed_name") or values["organization"]),
                                      role=data.get("role", "signatory"), status=data.get("status", "confirmed"),
                                      signed_at=data.get("signed_at") or utcnow(), source="import")
                if self.dry:
                    signature.id = self.unsaved_id(org_id, signature)
                else:
                    db.session.add(signature)
                existing[org_id] = signature
                created.append((outcome, signature))
                continue
            outcome.record = f"signature of {self.orgs.label(org_id)}"
            current = {k: getattr(signature, k) for k in self.FIELDS}
            changes = field_changes(current, data, mode) if mode != "skip" else {}
            if signature.id is None or signature.id < 0 or not changes:
                outcome.action = "duplicate" if not changes else "update"
                for key, value in changes.items():
                    setattr(signature, key, value)
                continue
            for key, value in changes.items():
                setattr(signature, key, value)
            self.changes.updated("signature", signature.id, outcome.row, {k: current[k] for k in changes}, changes)
            outcome.action = "update"
        if not self.dry:
            db.session.flush()
        for outcome, signature in created:
            self.describe(outcome, "signature", signature.id, self.orgs.label(signature.organization_id))
            self.changes.created("signature", signature.id, outcome.row)
        self.changes.flush()
        return outcomes

    def unsaved_id(self, org_id: int, signature: Signature) -> int:
        """Keep a dry run's new signature for the rows after it; its id."""
        self.unsaved[org_id] = signature
        return self.new_id()
