"""Saved column mappings: a file whose headers were mapped before is mapped the same way again."""

from sqlalchemy import select

from crm.common.text import single_line
from crm.extensions import db
from crm.imports.fields import field_map, header_key
from crm.imports.models import ImportMapping
from crm.imports.options import ImportError_


def saved_mappings(kind: str) -> list[ImportMapping]:
    """The saved mappings for a kind, by name."""
    return list(db.session.scalars(select(ImportMapping).where(ImportMapping.kind == kind)
                                   .order_by(ImportMapping.name)))


def get_mapping(kind: str, name: str) -> ImportMapping | None:
    """A saved mapping by name."""
    return db.session.scalar(select(ImportMapping).where(ImportMapping.kind == kind, ImportMapping.name == name))


def save_mapping(kind: str, name: str, header: list[str], columns: list[str],
                 user_id: int | None = None) -> ImportMapping:
    """Save (or replace) a named mapping: each header's field, so files with the same headers reuse it."""
    name = single_line(name)[:100]
    if not name:
        raise ImportError_("Give the mapping a name.")
    mapping = get_mapping(kind, name) or ImportMapping(kind=kind, name=name, created_by_id=user_id)
    mapping.columns = {header_key(h): c for h, c in zip(header, columns, strict=False)}
    db.session.add(mapping)
    db.session.commit()
    return mapping


def apply_mapping(mapping: ImportMapping, header: list[str]) -> list[str]:
    """A saved mapping applied to a file's header (headers it does not know are ignored)."""
    known = field_map(mapping.kind)
    result, taken = [], set()
    for cell in header:
        key = mapping.columns.get(header_key(cell), "")
        if key not in known or key in taken:
            key = ""
        taken.add(key)
        result.append(key)
    return result
