"""The corpus of ugly files in tests/imports/files/ and what each must give.

`python -m tests.imports.corpus` (re)writes the files from the recipes below; test_corpus checks the files on disk
still match them, then imports each one. An expectation is one of
  ("ok", {counts})            imported, with these counts
  ("errors", "text", {counts}) row errors: exit 1, nothing imported, the text in the report
  ("problem", "text")          the file as a whole cannot be imported: exit 1, nothing imported, the text shown
"""

import codecs
import io
import struct
import zipfile
import zlib
from pathlib import Path

FILES_DIR = Path(__file__).resolve().parent / "files"
GOOD = ("email,first_name,last_name,organization\nana@example.org,Ana,Sample,Mijente\n"
        "bo@example.org,Bo,Sample,Just Futures Law\n")
ACCENTED = ("email,first_name,last_name,organization\nrene@example.org,René,Muñoz,Mijente\n"
            "zoe@example.org,Zoë,Ça,Access Now\n")


def _png() -> bytes:
    """A real 1×1 PNG."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


def _zip() -> bytes:
    """A zip archive holding a CSV (what an .xlsx or a zipped export looks like)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("contacts.csv", date_time=(2024, 1, 1, 0, 0, 0)), GOOD)
    return buffer.getvalue()


def _later_bad_utf8() -> bytes:
    """70 KB of valid UTF-8 rows, then a Windows-1252 byte: detection sees UTF-8, the bad byte comes later."""
    rows = "".join(f"p{i}@example.org,Person,{i},Mijente\n" for i in range(2500))
    return ("email,first_name,last_name,organization\n" + rows).encode() + b"late@example.org,Ren\xe9,X,Mijente\n"


RECIPES: dict[str, tuple[str, bytes, tuple]] = {
    # encodings and byte order marks
    "contacts_utf8_bom.csv": ("contacts", codecs.BOM_UTF8 + ACCENTED.encode(), ("ok", {"created": 2})),
    "contacts_utf16le_bom.csv": ("contacts", ACCENTED.encode("utf-16"), ("ok", {"created": 2})),
    "contacts_utf16be_bom.csv": ("contacts", codecs.BOM_UTF16_BE + ACCENTED.encode("utf-16-be"),
                                 ("ok", {"created": 2})),
    "contacts_utf16le_no_bom.csv": ("contacts", ACCENTED.encode("utf-16-le"), ("ok", {"created": 2})),
    "contacts_windows1252.csv": ("contacts", (ACCENTED + "q@example.org,Smart “quotes”,O’Neil,\n").encode("cp1252"),
                                 ("ok", {"created": 3})),
    "contacts_latin1.csv": ("contacts", ACCENTED.encode("latin-1"), ("ok", {"created": 2})),
    "contacts_bad_utf8_after_64k.csv": ("contacts", _later_bad_utf8(), ("problem", "not valid UTF-8")),
    # delimiters, line ends, blank lines, columns
    "contacts_semicolon.csv": ("contacts", GOOD.replace(",", ";").encode(), ("ok", {"created": 2})),
    "contacts_tab.tsv": ("contacts", GOOD.replace(",", "\t").encode(), ("ok", {"created": 2})),
    "contacts_crlf.csv": ("contacts", GOOD.replace("\n", "\r\n").encode(), ("ok", {"created": 2})),
    "contacts_no_final_newline.csv": ("contacts", GOOD.rstrip("\n").encode(), ("ok", {"created": 2})),
    "contacts_blank_lines.csv": ("contacts", ("\n\n" + GOOD.replace("\n", "\n\n") + "\n,,,\n").encode(),
                                 ("ok", {"created": 2})),
    "contacts_trailing_empty_columns.csv": ("contacts", GOOD.replace("\n", ",,,\n").encode(), ("ok", {"created": 2})),
    "contacts_quoted_newlines.csv": ("contacts", (
        b'email,first_name,notes\nana@example.org,Ana,"met at the march,\nsays ""call me""\nin May"\n'
        b'bo@example.org,Bo,plain\n'), ("ok", {"created": 2})),
    "contacts_mixed_line_endings.csv": ("contacts", b"email,first_name\r\na@example.org,A\nb@example.org,B\r\n",
                                        ("ok", {"created": 2})),
    "contacts_extra_columns.csv": ("contacts", b"email,first_name,Favourite colour,Shoe size\na@example.org,A,red,9\n",
                                   ("ok", {"created": 1})),
    "contacts_short_rows.csv": ("contacts", b"email,first_name,last_name,title,phone\na@example.org,A\nb@example.org\n",
                                ("ok", {"created": 2})),
    "contacts_row_too_long.csv": ("contacts", b"email,first_name\na@example.org,A\nb@example.org,B,surprise,more\n",
                                  ("errors", "has 4 cells but the header names 2 columns", {"errors": 1})),
    "contacts_synonym_headers.csv": ("contacts", b"E-mail,First,Surname,Organization Name,Job Title\n"
                                                 b"a@example.org,A,Sample,Mijente,Director\n", ("ok", {"created": 1})),
    "contacts_full_name_column.csv": ("contacts", b"Name,Email\nAna Maria Sample,a@example.org\n",
                                      ("ok", {"created": 1})),
    # headers
    "contacts_missing_header.csv": ("contacts", b"ana@example.org,Ana,Sample\nbo@example.org,Bo,Sample\n",
                                    ("problem", "No column is mapped to Email")),
    "contacts_duplicate_headers.csv": ("contacts", b"email,first_name,email\na@example.org,A,other@example.org\n",
                                       ("ok", {"created": 1})),
    "contacts_header_only.csv": ("contacts", b"email,first_name,last_name\n", ("problem", "no data rows")),
    "contacts_html_page.csv": ("contacts", b"<!DOCTYPE html>\n<html><body><p>Sign in to continue</p></body></html>\n",
                               ("problem", "No column is mapped to Email")),
    # cells
    "contacts_1mb_cell.csv": ("contacts", b"email,notes\na@example.org,ok\nb@example.org," + b"x" * (1024 * 1024)
                              + b"\n", ("errors", "1,048,576 characters long", {"errors": 1, "created": 1})),
    "contacts_3mb_cell.csv": ("contacts", b'email,notes\na@example.org,"' + b"y" * (3 * 1024 * 1024) + b'"\n',
                              ("problem", "cannot be read")),
    "contacts_nul_byte.csv": ("contacts", b"email,first_name\na@example.org,A\x00na\nb@example.org,B\n",
                              ("errors", "NUL byte", {"errors": 1, "created": 1})),
    "contacts_formulas.csv": ("contacts", b'email,first_name,last_name,title\na@example.org,=HYPERLINK("http://x"),S,T\n'
                                          b"b@example.org,B,@SUM(A1),T\nc@example.org,C,S,+cmd|' /C calc'!A0\n"
                                          b"d@example.org,D,S,-2+3\n",
                              ("ok", {"created": 4})),  # cells are data: exports neutralize them
    "contacts_formula_tab.csv": ("contacts", b'email,first_name\na@example.org,"\t=1+1"\n',
                                 ("ok", {"created": 1})),
    "contacts_neutralized_formulas.csv": ("contacts", b"email,first_name,phone\na@example.org,'=not a formula,"
                                                      b"+1 202 555 0100\n", ("ok", {"created": 1})),
    "contacts_invalid_emails.csv": ("contacts", b"email,first_name\nnot-an-email,A\nb@@example.org,B\n"
                                                b"c@example,C\nd@localhost,D\nok@example.org,OK\n",
                                    ("errors", "is not a valid email address", {"errors": 4, "created": 1})),
    "contacts_empty_email.csv": ("contacts", b"email,first_name\n,A\nb@example.org,B\n",
                                 ("errors", "is empty; every row needs one", {"errors": 1, "created": 1})),
    "contacts_duplicate_emails.csv": ("contacts", b"email,first_name\nSame@Example.org,A\nsame@example.ORG,B\n"
                                                  b" same@example.org ,C\n",
                                      ("ok", {"created": 1, "skipped": 2})),
    "contacts_bad_vocabulary.csv": ("contacts", b"email,status,primary,phone\na@example.org,gone,maybe,call me\n",
                                    ("errors", "is not a contact status", {"errors": 1})),
    "contacts_overlong_name.csv": ("contacts", b"email,first_name\na@example.org," + b"N" * 500 + b"\n",
                                   ("errors", "the limit is 120", {"errors": 1})),
    "contacts_unbalanced_quote.csv": ("contacts", b'email,first_name\na@example.org,"Ana\nb@example.org,Bo\n',
                                      ("problem", "never closed")),
    # not CSV at all
    "contacts_empty.csv": ("contacts", b"", ("problem", "The file is empty")),
    "contacts_only_blank_lines.csv": ("contacts", b"\r\n\r\n   \r\n", ("problem", "The file is empty")),
    "contacts_image.png": ("contacts", _png(), ("problem", "PNG image")),
    "contacts_archive.zip": ("contacts", _zip(), ("problem", "zip archive")),
    "contacts_document.pdf": ("contacts", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", ("problem", "PDF")),
    "contacts_random_binary.bin": ("contacts", bytes((i * 7919 + 13) % 256 for i in range(4096)),
                                   ("problem", "not a text file")),
    # organizations
    "orgs_unknown_state.csv": ("orgs", b"name,state\nNew Group,NY\nOther Group,Nowhere\n",
                               ("errors", "is not a US state", {"errors": 1, "created": 1})),
    "orgs_unknown_issue_area.csv": ("orgs", b"name,issue_areas\nNew Group,privacy;space law\n",
                                    ("errors", "unknown issue area: space law", {"errors": 1})),
    "orgs_duplicate_spellings.csv": ("orgs", b"name,city\nThe Center for Sample Studies,Austin\n"
                                             b"Center for Sample Studies,\nCENTER FOR SAMPLE STUDIES,\n",
                                     ("ok", {"created": 1, "skipped": 2})),
    "orgs_existing_spellings.csv": ("orgs", b"name\nCenter on Privacy and Technology at Georgetown Law\nmijente\n"
                                            b"JUST FUTURES LAW\n", ("ok", {"skipped": 3})),
    "orgs_bad_vocabulary.csv": ("orgs", b"name,org_type,scope,website,country\nA Group,spaceship,galactic,not a url,"
                                        b"Narnia\n", ("errors", "is not a organization type", {"errors": 1})),
    "orgs_missing_name_column.csv": ("orgs", b"city,state\nAustin,TX\n", ("problem", "No column is mapped to Name")),
    "orgs_unknown_parent.csv": ("orgs", b"name,parent\nACLU of Nowhere,American Association of Nothing\n",
                                ("errors", "no organization called", {"errors": 1})),
}


def write_files() -> None:
    """Write every recipe into tests/imports/files/."""
    FILES_DIR.mkdir(exist_ok=True)
    for name, (_, content, _) in RECIPES.items():
        (FILES_DIR / name).write_bytes(content)


if __name__ == "__main__":
    write_files()
    print(f"wrote {len(RECIPES)} files to {FILES_DIR}")
