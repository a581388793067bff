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


def test_a_file_with_too_many_columns_is_refused_at_upload_and_not_kept(as_role, app):
    from pathlib import Path

    from tests.imports.test_wizard import upload

    client = as_role("organizer")
    header = ",".join(f"c{i}" for i in range(100_000))
    response = upload(client, f"email,{header}\na@example.org\n".encode())
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "100,001 columns" in page and "at most 500" in page
    folder = Path(app.instance_path) / "imports"
    assert not list(folder.glob("*")) if folder.exists() else True
    # 500 columns are still a file one can map.
    wide = ",".join(["email", *(f"c{i}" for i in range(499))])
    assert upload(client, f"{wide}\na@example.org\n".encode()).status_code == 303


def test_quotas_refuse_uploads_clearly_and_discarding_frees_room(as_role, app, users):
    from pathlib import Path

    from tests.imports.test_wizard import token_of, upload

    app.config.update(CRM_IMPORT_USER_QUOTA_MB=1, CRM_IMPORT_TOTAL_QUOTA_MB=1)
    client = as_role("organizer")
    big = b"email,notes\n" + b"".join(b"p%d@example.org,%s\n" % (i, b"x" * 60) for i in range(9000))  # ~0.7 MB
    first = upload(client, big)
    assert first.status_code == 303
    second = upload(client, big)
    page = second.get_data(as_text=True)
    assert second.status_code == 400 and "Your unfinished imports already hold 0.7 MB of the 1 MB" in page
    assert "Discard" in page
    folder = Path(app.instance_path) / "imports"
    assert len(list(folder.glob("*.upload"))) == 1  # the refused bytes are not kept
    # Another organizer has room of their own, but not in the folder.
    other = app.test_client()
    from tests.conftest import login, make_user

    make_user("organizer", "second@example.org")
    login(other, "second@example.org")
    third = upload(other, big)
    assert third.status_code == 400 and "The import folder is full" in third.get_data(as_text=True)
    # Discarding an unfinished upload frees its room.
    response = client.post(f"/imports/u/{token_of(first)}/discard")
    assert response.status_code == 303
    assert upload(client, big).status_code == 303


def test_sweep_deletes_expired_uploads_orphans_and_old_reports(app, runner, tmp_path):
    import os
    import time
    from pathlib import Path

    from crm.imports.uploads import Upload, batch_report_path, sweep

    folder = Path(app.instance_path) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    fresh, old = Upload("a" * 32, folder, {"user_id": 1}), Upload("b" * 32, folder, {"user_id": 1})
    for upload in (fresh, old):
        upload.path.write_bytes(b"email\nx@example.org\n")
        upload.save()
        upload.report_path.write_text("row,action\n")
    (folder / f"{'c' * 32}.preview.json").write_text("{}")  # its upload is gone
    report = batch_report_path(folder, 7)
    report.write_text("row,action\n")
    day_and_a_bit = time.time() - 25 * 3600
    os.utime(old.path, (day_and_a_bit, day_and_a_bit))
    os.utime(report, (time.time() - 100 * 86400,) * 2)
    result = runner.invoke(args=["import", "sweep"])
    assert result.exit_code == 0 and "Deleted 5 files" in result.output, result.output
    assert sorted(p.name for p in folder.iterdir()) == sorted([fresh.path.name, f"{'a' * 32}.json",
                                                               fresh.report_path.name])
    assert sweep(folder) == (0, 0)
