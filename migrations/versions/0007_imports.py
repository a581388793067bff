"""Contacts: at most one active primary contact per organization (a partial unique index)

Organizations that have several active primary contacts today (an import could add a second one without a word,
and a "primary contacts" merge then mailed the organization twice) keep one: the one that became a contact first
(lowest id); the others stay active contacts, no longer primary. The choice is deterministic, so SQLite and
PostgreSQL, and any rerun, agree.

Revision ID: 0007_imports
Revises: 0007_signon
Create Date: 2026-12-03 08:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_imports'
down_revision = '0007_signon'
branch_labels = None
depends_on = None

ACTIVE_PRIMARY = "is_primary AND status = 'active'"

DEMOTE_EXTRA_PRIMARIES = (
    "UPDATE contacts SET is_primary = false, version = version + 1 "
    "WHERE is_primary AND status = 'active' AND organization_id IS NOT NULL AND EXISTS ("
    "SELECT 1 FROM contacts first WHERE first.organization_id = contacts.organization_id "
    "AND first.is_primary AND first.status = 'active' AND first.id < contacts.id)"
)


def upgrade():
    op.execute(DEMOTE_EXTRA_PRIMARIES)
    op.create_index('uq_contacts_one_active_primary', 'contacts', ['organization_id'], unique=True,
                    sqlite_where=sa.text(ACTIVE_PRIMARY), postgresql_where=sa.text(ACTIVE_PRIMARY))


def downgrade():
    op.drop_index('uq_contacts_one_active_primary', table_name='contacts')
