"""Files that try the reader's and the upload folder's limits: where a bad byte is, too many columns, quotas."""

from crm.imports.reader import FileProblem, iter_rows, sniff


def _rows_until_problem(path):
    """Read every row; the FileProblem's message."""
    try:
        for _ in iter_rows(path, sniff(path)):
            pass
    except FileProblem as exc:
        return str(exc)
    return ""


def test_a_bad_byte_is_reported_on_its_own_row(tmp_path):
    # The text stream decodes 8 KiB ahead of the csv reader: the row it had reached is dozens of rows early.
    rows = "".join(f"p{i}@example.org,Person,{i},Mijente\n" for i in range(5000))
    path = tmp_path / "late.csv"
    path.write_bytes(("email,first_name,last_name,organization\n" + rows).encode()
                     + b"late@example.org,Ren\xe9,X,Mijente\nafter@example.org,A,B,C\n")
    message = _rows_until_problem(path)
    # The header is row 1 and the 5,000 good rows are 2–5001: the bad byte is on row 5002.
    assert "on row 5002 " in message and "\\xe9" in message, message


def test_a_bad_byte_inside_a_quoted_multiline_cell_names_the_row_it_starts(tmp_path):
    rows = "".join(f"p{i}@example.org,fine\n" for i in range(4000))  # past the 64 KiB that detection reads
    path = tmp_path / "quoted.csv"
    path.write_bytes(("email,notes\n" + rows).encode() + b"b@example.org,\"two\nlines \xff\"\nc@example.org,x\n")
    assert "on row 4002 " in _rows_until_problem(path)
