"""Letters: the slugs a letter had before it was renamed, so links already sent with them keep working

Revision ID: 0008_letter_slugs
Revises: 0007_imports
Create Date: 2026-12-04 09:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008_letter_slugs'
down_revision = '0007_imports'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'letter_former_slugs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('slug', sa.String(length=100), nullable=False),
        sa.Column('letter_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['letter_id'], ['letters.id'], name=op.f('fk_letter_former_slugs_letter_id_letters'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_letter_former_slugs')),
        sa.UniqueConstraint('letter_id', 'slug', name=op.f('uq_letter_former_slugs_letter_id_slug')),
    )
    with op.batch_alter_table('letter_former_slugs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_letter_former_slugs_slug'), ['slug'], unique=False)


def downgrade():
    with op.batch_alter_table('letter_former_slugs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_letter_former_slugs_slug'))
    op.drop_table('letter_former_slugs')
