"""Test data: factory_boy factories for the few rows a test needs, instead of the 68-organization seed.

Each factory writes through `db.session` as it is when the factory is called (`sqlalchemy_session_factory`), so
its rows land in whatever the test runs in: the rolled-back transaction's SAVEPOINT session, or a `commits` test's
own database. Each row is committed as the tests' own setup did by hand: a request's session reads it, and a
`commits` test's worker process sees it.

    org = OrganizationFactory(name="Mijente", issue_areas=["immigration"])
    letter = LetterFactory(status="collecting", public_signon=True)
    SignatureFactory(letter=letter, organization=org, role="lead")
"""

from datetime import UTC, date, datetime

import factory
from factory.alchemy import SQLAlchemyModelFactory

from crm.common.types import utc_midnight
from crm.contacts.models import Contact
from crm.extensions import db
from crm.letters.models import Letter, Signature
from crm.organizations.editing import refresh_search_text
from crm.organizations.models import IssueArea, Organization
from crm.seed import ISSUE_AREAS


def _session():
    """The session of the test running now (conftest swaps `db.session` for each rolled-back test)."""
    return db.session


class _Factory(SQLAlchemyModelFactory):
    """Rows committed through the current test's session."""

    class Meta:
        abstract = True
        sqlalchemy_session_factory = _session
        sqlalchemy_session_persistence = "commit"


class IssueAreaFactory(_Factory):
    """An issue area by slug, the one already there when it exists (names as the seed's vocabulary has them)."""

    class Meta:
        model = IssueArea
        sqlalchemy_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"area-{n}")
    name = factory.LazyAttribute(lambda o: ISSUE_AREAS.get(o.slug, o.slug.replace("-", " ").capitalize()))


def issue_areas(slugs) -> list[IssueArea]:
    """Issue areas from slugs (or IssueArea rows), each made when missing."""
    return [IssueAreaFactory(slug=s) if isinstance(s, str) else s for s in slugs]


class OrganizationFactory(_Factory):
    """An organization; `issue_areas` may be slugs. Sort name and search text are derived as the services derive
    them, so lists, search and matching find it."""

    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Organization {n:03d}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        """Accept issue areas as slugs."""
        kwargs["issue_areas"] = issue_areas(kwargs.get("issue_areas", ()))
        return super()._create(model_class, *args, **kwargs)

    @classmethod
    def _save(cls, model_class, session, args, kwargs):
        """Derive the sort name and search text before the commit."""
        org = model_class(*args, **kwargs)
        session.add(org)
        refresh_search_text(org)
        session.commit()
        return org


class LetterFactory(_Factory):
    """A letter (a draft unless told otherwise); `issue_areas` may be slugs."""

    class Meta:
        model = Letter

    slug = factory.Sequence(lambda n: f"letter-{n}")
    title = factory.Sequence(lambda n: f"Letter number {n}")
    body = "We, the undersigned organizations, ask you to act."
    status = "draft"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        """Accept issue areas as slugs."""
        kwargs["issue_areas"] = issue_areas(kwargs.get("issue_areas", ()))
        return super()._create(model_class, *args, **kwargs)


class SignatureFactory(_Factory):
    """A confirmed signature of an organization on a letter (each made when not given: a letter delivered in
    2021)."""

    class Meta:
        model = Signature

    letter = factory.SubFactory(LetterFactory, status="delivered", letter_date=date(2021, 4, 19))
    organization = factory.SubFactory(OrganizationFactory)
    listed_name = factory.LazyAttribute(lambda o: o.organization.name)
    role = "signatory"
    status = "confirmed"
    source = "manual"
    # Signed on the letter's date, as the seed's signatures are (else now).
    signed_at = factory.LazyAttribute(
        lambda o: utc_midnight(o.letter.letter_date) if o.letter.letter_date else datetime.now(UTC))


class ContactFactory(_Factory):
    """An active contact at an organization (made when not given)."""

    class Meta:
        model = Contact

    organization = factory.SubFactory(OrganizationFactory)
    first_name = factory.Sequence(lambda n: f"First{n}")
    last_name = factory.Sequence(lambda n: f"Last{n}")
    email = factory.Sequence(lambda n: f"person{n}@example.org")
