"""Per-organization signing counts kept by the database itself.

`organizations.letters_signed` (confirmed signatures) and `organizations.last_signed_at` (the latest confirmed
signature's time) let the filters "signed at least N letters", "last signed before / after", "never signed" and the
matching sorts read one indexed column instead of grouping a million signatures on every request.

Triggers on `signatures` keep them true whatever writes a signature: the ORM, Core bulk inserts, raw SQL, a cascade
from a deleted letter, an organization merge moving signatures. Each trigger recomputes the affected organizations'
two values from their signatures (an index range scan on `ix_signatures_org_status_signed`), so they cannot drift
the way +1 / -1 bookkeeping can. Migration 0006 installs the same SQL; `db.create_all()` (tests) installs it through
the `after_create` listener below. A later SQLite migration that rebuilds `signatures` in batch mode drops these
triggers with the old table and must install them again (tests/test_migrations.py checks they exist at head).
"""

from contextlib import contextmanager

from sqlalchemy import DDL, event

_REFRESH = (
    "UPDATE organizations SET "
    "letters_signed = (SELECT count(*) FROM signatures s "
    "WHERE s.organization_id = organizations.id AND s.status = 'confirmed'), "
    "last_signed_at = (SELECT max(s.signed_at) FROM signatures s "
    "WHERE s.organization_id = organizations.id AND s.status = 'confirmed') "
    "WHERE organizations.id IN ({ids})"
)

SQLITE = [
    "CREATE TRIGGER IF NOT EXISTS signatures_counts_insert AFTER INSERT ON signatures "
    "WHEN NEW.status = 'confirmed' BEGIN " + _REFRESH.format(ids="NEW.organization_id") + "; END",
    "CREATE TRIGGER IF NOT EXISTS signatures_counts_delete AFTER DELETE ON signatures "
    "WHEN OLD.status = 'confirmed' BEGIN " + _REFRESH.format(ids="OLD.organization_id") + "; END",
    "CREATE TRIGGER IF NOT EXISTS signatures_counts_update AFTER UPDATE OF organization_id, status, signed_at "
    "ON signatures WHEN OLD.status = 'confirmed' OR NEW.status = 'confirmed' BEGIN "
    + _REFRESH.format(ids="OLD.organization_id, NEW.organization_id") + "; END",
]

POSTGRESQL = [
    "CREATE OR REPLACE FUNCTION signatures_refresh_counts() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN "
    "IF TG_OP = 'INSERT' THEN " + _REFRESH.format(ids="NEW.organization_id") + "; "
    "ELSIF TG_OP = 'DELETE' THEN " + _REFRESH.format(ids="OLD.organization_id") + "; "
    "ELSE " + _REFRESH.format(ids="OLD.organization_id, NEW.organization_id") + "; "
    "END IF; RETURN NULL; END $$",
    "DROP TRIGGER IF EXISTS signatures_counts_insert ON signatures",
    "CREATE TRIGGER signatures_counts_insert AFTER INSERT ON signatures FOR EACH ROW "
    "WHEN (NEW.status = 'confirmed') EXECUTE FUNCTION signatures_refresh_counts()",
    "DROP TRIGGER IF EXISTS signatures_counts_delete ON signatures",
    "CREATE TRIGGER signatures_counts_delete AFTER DELETE ON signatures FOR EACH ROW "
    "WHEN (OLD.status = 'confirmed') EXECUTE FUNCTION signatures_refresh_counts()",
    "DROP TRIGGER IF EXISTS signatures_counts_update ON signatures",
    "CREATE TRIGGER signatures_counts_update AFTER UPDATE OF organization_id, status, signed_at ON signatures "
    "FOR EACH ROW WHEN (OLD.status = 'confirmed' OR NEW.status = 'confirmed') "
    "EXECUTE FUNCTION signatures_refresh_counts()",
]

TRIGGER_NAMES = ("signatures_counts_insert", "signatures_counts_delete", "signatures_counts_update")

# Recompute every organization's values (after installing the triggers on existing data, or to repair by hand).
REFRESH_ALL = (
    "UPDATE organizations SET "
    "letters_signed = (SELECT count(*) FROM signatures s "
    "WHERE s.organization_id = organizations.id AND s.status = 'confirmed'), "
    "last_signed_at = (SELECT max(s.signed_at) FROM signatures s "
    "WHERE s.organization_id = organizations.id AND s.status = 'confirmed')"
)


def install(table) -> None:
    """Install the triggers whenever `signatures` is created by metadata.create_all()."""
    for statement in SQLITE:
        event.listen(table, "after_create", DDL(statement).execute_if(dialect="sqlite"))
    for statement in POSTGRESQL:
        event.listen(table, "after_create", DDL(statement.replace("%", "%%")).execute_if(dialect="postgresql"))


@contextmanager
def suspended(conn):
    """For bulk loads (benchmark data): the triggers off, then every organization's values computed once.

    Row triggers recompute an organization per inserted signature; for a million rows in one transaction that
    is a million UPDATEs of twenty thousand rows (and, on PostgreSQL, as many dead row versions).
    """
    postgresql = conn.dialect.name == "postgresql"
    for name in TRIGGER_NAMES:
        conn.exec_driver_sql(f"ALTER TABLE signatures DISABLE TRIGGER {name}" if postgresql
                             else f"DROP TRIGGER IF EXISTS {name}")
    yield
    if postgresql:
        for name in TRIGGER_NAMES:
            conn.exec_driver_sql(f"ALTER TABLE signatures ENABLE TRIGGER {name}")
    else:
        for statement in SQLITE:
            conn.exec_driver_sql(statement)
    conn.exec_driver_sql(REFRESH_ALL)
