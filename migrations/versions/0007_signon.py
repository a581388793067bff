"""Sign-on: personal-link revocations, editable sign-on mails, why a sign-on waits for review, a status index

Revision ID: 0007_signon
Revises: 0006_signed_counts
Create Date: 2026-12-03 08:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_signon'
down_revision = '0007_auth'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'personal_link_revocations',
        sa.Column('letter_id', sa.Integer(), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=False),
        sa.Column('revoked_at', sa.DateTime(), nullable=False),
        sa.Column('revoked_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['letter_id'], ['letters.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['revoked_by_id'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('letter_id', 'organization_id'),
    )
    with op.batch_alter_table('personal_link_revocations', schema=None) as batch_op:
        batch_op.create_index('ix_personal_link_revocations_organization_id', ['organization_id'], unique=False)
    op.create_table(
        'signon_mail_templates',
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('subject', sa.String(length=1000), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('updated_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('kind'),
    )
    with op.batch_alter_table('signon_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('review_reason', sa.String(length=300), server_default='', nullable=False))
        batch_op.create_index('ix_signon_requests_status', ['status'], unique=False)


def downgrade():
    with op.batch_alter_table('signon_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_signon_requests_status')
        batch_op.drop_column('review_reason')
    op.drop_table('signon_mail_templates')
    with op.batch_alter_table('personal_link_revocations', schema=None) as batch_op:
        batch_op.drop_index('ix_personal_link_revocations_organization_id')
    op.drop_table('personal_link_revocations')
