"""Likely duplicate organizations, and merging two into one (previewable, audited)."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from rapidfuzz import fuzz, process
from sqlalchemy import select, update

from crm.audit.services import record
from crm.common.errors import NotFound
from crm.common.text import plural
from crm.contacts.models import Contact
from crm.extensions import db
from crm.letters.models import Signature, SignOnRequest
from crm.mailmerge.models import MailMerge, Message
from crm.organizations.editing import add_alias, refresh_search_text, snapshot
from crm.organizations.models import Interaction, Organization, OrganizationAlias
from crm.organizations.names import names_conflict, normalize_org_name
from crm.segments.models import Segment

_STATUS_RANK = {"confirmed": 3, "pending": 2, "declined": 1, "withdrawn": 0}
_FILLABLE = ("acronym", "org_type", "scope", "city", "state", "country", "website")


class MergeError(ValueError):
    """Two organizations that cannot be merged; nothing changed."""


class MissingOrganization(MergeError, NotFound):
    """One of the two organizations to merge does not exist (the API answers 404, the page shows it)."""


@dataclass
class DuplicatePair:
    """Two organizations that may be one, and why we think so."""

    first: Organization
    second: Organization
    reasons: list[str] = field(default_factory=list)
    score: float = 0.0


def website_domain(url: str | None) -> str:
    """The host of a website without 'www.' ('' when there is none)."""
    if not url:
        return ""
    try:
        host = urlsplit(url if "://" in url else f"https://{url}").netloc.lower().split(":")[0]
    except ValueError:
        return ""
    return host[4:] if host.startswith("www.") else host


def find_duplicates(limit: int = 200) -> list[DuplicatePair]:
    """Likely duplicates: same normalised name, alias collision, high fuzzy score, same website.

    Reads four columns of every active organization (not ORM instances) and scores each block of similar names
    in rapidfuzz's C++ loop; only the organizations of the pairs shown are loaded.
    """
    orgs = {
        row.id: row
        for row in db.session.execute(
            select(Organization.id, Organization.name, Organization.parent_id, Organization.website,
                   Organization.sort_name).where(Organization.archived.is_(False))
        )
    }
    pairs: dict[tuple[int, int], tuple[list[str], float]] = {}

    def note(a: int, b: int, reason: str, score: float) -> None:
        """Remember a pair (smaller id first) with one more reason."""
        if a == b or a not in orgs or b not in orgs:
            return
        # An affiliate and its parent share words (and sometimes a domain) by design: not duplicates.
        if orgs[a].parent_id == b or orgs[b].parent_id == a:
            return
        reasons, best = pairs.setdefault((min(a, b), max(a, b)), ([], 0.0))
        if reason not in reasons:
            reasons.append(reason)
        pairs[(min(a, b), max(a, b))] = (reasons, max(best, score))

    normalized = {org_id: normalize_org_name(row.name) for org_id, row in orgs.items()}
    groups: dict[str, list[int]] = defaultdict(list)
    for org_id, name in normalized.items():
        groups[name].append(org_id)
    for ids in groups.values():
        for other in ids[1:]:
            note(ids[0], other, "same name", 1.0)
    aliases = db.session.execute(select(OrganizationAlias.organization_id, OrganizationAlias.name))
    for org_id, alias in aliases:
        for other in groups.get(normalize_org_name(alias), []):
            note(org_id, other, "alias collision", 0.99)
    domains: dict[str, list[int]] = defaultdict(list)
    for org_id, row in orgs.items():
        if domain := website_domain(row.website):
            domains[domain].append(org_id)
    for ids in domains.values():
        for other in ids[1:]:
            note(ids[0], other, "same website", 0.9)
    # Fuzzy scores are computed within blocks of names sharing one of their two rarest long words, so a typo in
    # one word ("Defence" / "Defense") still leaves the pair a block in common.
    long_words = {org_id: sorted({w for w in name.split() if len(w) > 3}) for org_id, name in normalized.items()}
    frequency = Counter(w for words in long_words.values() for w in words)
    blocks: dict[str, list[int]] = defaultdict(list)
    for org_id, words in long_words.items():
        for word in sorted(words, key=lambda w: (frequency[w], w))[:2]:
            blocks[word].append(org_id)
    for ids in blocks.values():
        ids = ids[:300]
        names = [normalized[i] for i in ids]
        for i, a in enumerate(ids[:-1]):
            later = names[i + 1 :]
            for _name, score, j in process.extract(names[i], later, scorer=fuzz.token_sort_ratio, score_cutoff=90,
                                                   limit=None):
                b = ids[i + 1 + j]
                if not names_conflict(names[i].split(), later[j].split()):
                    note(a, b, f"similar names ({score:.0f}%)", score / 100)
    chosen = sorted(pairs.items(), key=lambda item: (-item[1][1], orgs[item[0][0]].sort_name or ""))[:limit]
    loaded = {
        o.id: o
        for o in db.session.scalars(select(Organization).where(Organization.id.in_({i for key, _ in chosen
                                                                                    for i in key})))
    }
    return [DuplicatePair(loaded[a], loaded[b], reasons, score) for (a, b), (reasons, score) in chosen]


@dataclass
class MergePlan:
    """What merging `remove` into `keep` will do (or did)."""

    keep: Organization
    remove: Organization
    contacts: int = 0
    signatures_moved: int = 0
    signatures_collapsed: list[str] = field(default_factory=list)
    aliases: int = 0
    interactions: int = 0
    segments: list[str] = field(default_factory=list)
    affiliates: int = 0
    applied: bool = False  # set once the merge is done; until then the plan is a preview

    def summary(self) -> str:
        """One sentence for the audit log and the confirmation message: a plan until `applied` is set."""
        done = self.applied
        moved = ", ".join(
            (
                plural(self.contacts, "contact"),
                plural(self.signatures_moved, "signature"),
                plural(self.aliases, "alias", "aliases"),
                plural(self.interactions, "interaction"),
            )
        )
        text = (
            f"{'Merged' if done else 'Would merge'} {self.remove.name} (#{self.remove.id}) into "
            f"{self.keep.name} (#{self.keep.id}): {moved} {'moved' if done else 'would move'}"
        )
        if self.signatures_collapsed:
            text += (
                "; both had signed " + ", ".join(self.signatures_collapsed) + ", so one signature "
                + ("was" if done else "would be") + " kept for each"
            )
        if self.segments:
            text += f"; segments {'updated' if done else 'to update'}: " + ", ".join(self.segments)
        return text + "."


def _segments_referring(org_id: int) -> list[Segment]:
    """Segments whose filter names this organization (as `parent`)."""
    return [
        s
        for s in db.session.scalars(select(Segment))
        if (s.filter or {}).get("parent") in (org_id, str(org_id))
    ]


def plan_merge(keep_id: int, remove_id: int) -> MergePlan:
    """Preview a merge without changing anything (MergeError for impossible merges)."""
    if keep_id == remove_id:
        raise MergeError("Choose two different organizations.")
    keep, remove = db.session.get(Organization, keep_id), db.session.get(Organization, remove_id)
    if keep is None or remove is None:
        raise MissingOrganization("One of the organizations does not exist.")
    if keep.parent_id == remove.id:
        raise MergeError(
            f"{keep.name} is an affiliate of {remove.name}; merge the other way round, or not at all."
        )
    plan = MergePlan(keep, remove)
    plan.contacts = len(
        list(db.session.scalars(select(Contact.id).where(Contact.organization_id == remove_id)))
    )
    keep_letters = {
        s.letter_id for s in db.session.scalars(select(Signature).where(Signature.organization_id == keep_id))
    }
    for sig in db.session.scalars(select(Signature).where(Signature.organization_id == remove_id)):
        if sig.letter_id in keep_letters:
            plan.signatures_collapsed.append(sig.letter.slug)
        else:
            plan.signatures_moved += 1
    plan.aliases = len(remove.aliases) + 1
    plan.interactions = len(
        list(db.session.scalars(select(Interaction.id).where(Interaction.organization_id == remove_id)))
    )
    plan.segments = [s.name for s in _segments_referring(remove_id)]
    plan.affiliates = len(remove.affiliates)
    return plan


def merge_organizations(keep_id: int, remove_id: int, user_id: int | None = None) -> MergePlan:
    """Merge `remove` into `keep` in one transaction (contacts, signatures, aliases, references)."""
    plan = plan_merge(keep_id, remove_id)
    keep, remove = plan.keep, plan.remove
    before = snapshot(keep)
    try:
        db.session.execute(
            update(Contact).where(Contact.organization_id == remove.id).values(organization_id=keep.id)
        )
        kept = {
            s.letter_id: s
            for s in db.session.scalars(select(Signature).where(Signature.organization_id == keep.id))
        }
        for sig in list(db.session.scalars(select(Signature).where(Signature.organization_id == remove.id))):
            mine = kept.get(sig.letter_id)
            if mine is None:
                sig.organization_id = keep.id
                continue
            # Both signed: keep one row, with the stronger answer and the lead role if either led.
            if _STATUS_RANK.get(sig.status, 0) > _STATUS_RANK.get(mine.status, 0):
                for name in (
                    "status",
                    "signed_at",
                    "authorized_name",
                    "authorized_title",
                    "authorized_email",
                    "text_fingerprint",
                    "contact_id",
                    "source",
                ):
                    setattr(mine, name, getattr(sig, name))
            if sig.role == "lead" and mine.role != "lead":
                mine.role, mine.position = "lead", sig.position
            db.session.execute(
                update(SignOnRequest).where(SignOnRequest.signature_id == sig.id).values(signature_id=mine.id)
            )
            record(
                "delete",
                "signature",
                sig.id,
                user_id=user_id,
                summary=f"Duplicate signature of {remove.name} on {sig.letter.slug} folded into "
                f"{keep.name}'s",
            )
            db.session.delete(sig)
        db.session.flush()
        for alias in list(remove.aliases):
            remove.aliases.remove(alias)
            add_alias(keep, alias.name, source=alias.source)
        add_alias(keep, remove.name, source="merge")
        if remove.acronym and remove.acronym != keep.acronym:
            if keep.acronym:
                add_alias(keep, remove.acronym, source="merge")
            else:
                keep.acronym = remove.acronym
        for name in _FILLABLE:
            if not getattr(keep, name) and getattr(remove, name):
                setattr(keep, name, getattr(remove, name))
        for area in remove.issue_areas:
            if area not in keep.issue_areas:
                keep.issue_areas.append(area)
        if remove.notes:
            keep.notes = (keep.notes + "\n\n" if keep.notes else "") + f"From {remove.name}: {remove.notes}"
        db.session.execute(
            update(Interaction)
            .where(Interaction.organization_id == remove.id)
            .values(organization_id=keep.id)
        )
        db.session.execute(
            update(Message).where(Message.organization_id == remove.id).values(organization_id=keep.id)
        )
        db.session.execute(
            update(SignOnRequest)
            .where(SignOnRequest.proposed_organization_id == remove.id)
            .values(proposed_organization_id=keep.id)
        )
        db.session.execute(
            update(Organization).where(Organization.parent_id == remove.id).values(parent_id=keep.id)
        )
        for segment in _segments_referring(remove.id):
            segment.filter = {**segment.filter, "parent": keep.id}
        for merge in db.session.scalars(select(MailMerge)):
            inline = (merge.audience or {}).get("filter") or {}
            if inline.get("parent") in (remove.id, str(remove.id)):
                merge.audience = {**merge.audience, "filter": {**inline, "parent": keep.id}}
        db.session.flush()
        refresh_search_text(keep)
        plan.applied = True
        summary = plan.summary()
        record(
            "merge",
            "organization",
            keep.id,
            user_id=user_id,
            summary=summary,
            before=before,
            after=snapshot(keep),
        )
        record("merge", "organization", remove.id, user_id=user_id, summary=summary, before=snapshot(remove))
        db.session.expire(remove)
        db.session.delete(db.session.get(Organization, remove.id))
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return plan
