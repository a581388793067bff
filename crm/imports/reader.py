"""Reading an uploaded spreadsheet export: what it is, its encoding and delimiter, then its rows one at a time.

Nothing here loads a file whole: detection looks at the first 64 KiB and the rows are streamed through the csv
module, so a 50 MB file costs the memory of one row.
"""

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from charset_normalizer import from_bytes

SAMPLE_BYTES = 64 * 1024
# The largest cell we read at all; anything longer makes the file unreadable (a cell over a field's own limit,
# e.g. 300 characters for a name, is read and reported on its row).
MAX_CELL_CHARS = 2 * 1024 * 1024
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
# More columns than any contact or organization list has: every page and check of the wizard grows with them
# (a 100,000-column header made a 78 MB mapping page).
MAX_COLUMNS = 500

_MAGIC = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx or OpenDocument file is one: save it as CSV first)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel (.xls) or Word file (save it as CSV first)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"{\\rtf", "an RTF document"),
)


class FileProblem(ValueError):
    """The file cannot be read as a table at all; the message says why, in words a user can act on."""


@dataclass
class SourceInfo:
    """What we learned about a file: its encoding, delimiter and header row."""

    encoding: str
    delimiter: str
    header: list[str]

    @property
    def encoding_label(self) -> str:
        """The encoding as people name it."""
        return {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM", "utf-16": "UTF-16", "utf-16-le": "UTF-16 LE",
                "utf-16-be": "UTF-16 BE", "cp1252": "Windows-1252", "latin-1": "Latin-1"}.get(self.encoding,
                                                                                             self.encoding)

    @property
    def delimiter_label(self) -> str:
        """The delimiter as a word."""
        return DELIMITERS.get(self.delimiter, repr(self.delimiter))


def _utf16_without_bom(sample: bytes) -> str | None:
    """'utf-16-le'/'utf-16-be' when NUL bytes sit on every other position (ASCII text in UTF-16), else None."""
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def detect_encoding(sample: bytes) -> str:
    """The codec to read the file with: a BOM decides, then UTF-16 and UTF-8 are tried, then the detector."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    utf16 = _utf16_without_bom(sample)
    if utf16:
        return utf16
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(sample, cp_isolation=["cp1252", "latin_1", "utf_16"]).best()
    name = (best.encoding if best else "cp1252").replace("_", "-")
    if name in {"cp1252", "windows-1252"}:
        return "cp1252"
    if name.startswith("utf-16"):
        return name
    # Latin-1 decodes every byte; prefer Windows-1252 (a superset for text) whenever it decodes the sample.
    try:
        sample.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def _looks_binary(text: str) -> bool:
    """Many control characters (other than tab and line ends): not text, whatever the codec says."""
    if not text:
        return False
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\r\n")
    return controls > 8 and controls > 0.05 * len(text)


def detect_delimiter(text: str) -> str:
    """Comma, semicolon or tab: the one that splits the first rows into the most, and most consistent, columns."""
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        counts = []
        try:
            for record in csv.reader(io.StringIO(text), delimiter=delimiter):
                if any(cell.strip() for cell in record):
                    counts.append(len(record))
                if len(counts) >= 20:
                    break
        except csv.Error:
            continue
        if not counts or counts[0] < 2:
            continue
        consistent = sum(1 for c in counts if c == counts[0])
        score = (consistent, counts[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _open_text(path: Path, encoding: str) -> io.TextIOWrapper:
    """The file as a text stream (newline='' so the csv module sees quoted line breaks as they are)."""
    return io.TextIOWrapper(open(path, "rb"), encoding=encoding, newline="", errors="strict")  # noqa: SIM115


def _reader(stream, delimiter: str):
    """A csv reader with our limits."""
    csv.field_size_limit(MAX_CELL_CHARS)
    return csv.reader(stream, delimiter=delimiter, strict=False)


def _clean_header(record: list[str]) -> list[str]:
    """Header cells stripped, a stray BOM removed, trailing empty columns dropped, empty ones named."""
    cells = [cell.replace("\ufeff", "").strip() for cell in record]
    while cells and not cells[-1]:
        cells.pop()
    return [cell or f"column {i + 1}" for i, cell in enumerate(cells)]


def sniff(path: Path) -> SourceInfo:
    """Look at a file and say how to read it; raises FileProblem for a file that is not a delimited text table."""
    with open(path, "rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    if not sample.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise FileProblem("The file is empty.")
    for magic, what in _MAGIC:
        if sample.startswith(magic):
            raise FileProblem(f"This is {what}, not a CSV file.")
    encoding = detect_encoding(sample)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample, final=False)
    if _looks_binary(text):
        raise FileProblem("This is not a text file (it is full of control characters); upload a CSV file.")
    delimiter = detect_delimiter(text)
    header: list[str] = []
    with _open_text(path, encoding) as stream:
        try:
            for record in _reader(stream, delimiter):
                if not _is_blank(record):
                    header = _clean_header(record)
                    break
        except UnicodeDecodeError as exc:
            raise FileProblem(f"The file is not valid {encoding} text near its start.") from exc
        except csv.Error as exc:
            raise FileProblem(f"The first row cannot be read: {exc}.") from exc
    if not header:
        raise FileProblem("The file has no rows.")
    if len(header) > MAX_COLUMNS:
        raise FileProblem(f"The file has {len(header):,} columns; an import reads at most {MAX_COLUMNS}. Remove "
                          f"the columns you do not need (or check that the delimiter is right) and upload it again.")
    return SourceInfo(encoding=encoding, delimiter=delimiter, header=header)


class _Lines:
    """A text stream's lines, remembering those of the record being read (to tell where a record ends)."""

    def __init__(self, stream):
        self.stream = stream
        self.record: list[str] = []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = next(self.stream)
        self.record.append(line)
        return line


def _is_blank(record: list[str]) -> bool:
    """A row with nothing but whitespace (a blank line, or only delimiters)."""
    return not "".join(record).strip()


def _row_of_bad_byte(path: Path, info: SourceInfo) -> int | None:
    """The row (counted as iter_rows counts) holding the first byte that is not valid in the file's encoding.

    Read again with errors='surrogateescape': each bad byte becomes a lone surrogate (U+DC80–U+DCFF), which
    strict decoding never produces, so the first record holding one is the row. None if that cannot be told.
    """
    try:
        with io.TextIOWrapper(open(path, "rb"), encoding=info.encoding, newline="",  # noqa: SIM115
                              errors="surrogateescape") as stream:
            for number, record in enumerate(_reader(stream, info.delimiter), start=1):
                if any(_BAD_BYTE.search(cell) for cell in record):
                    return number
    except (UnicodeError, csv.Error):
        return None
    return None


_BAD_BYTE = re.compile("[\udc80-\udcff]")


def iter_rows(path: Path, info: SourceInfo) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) for every non-blank data row, streamed; row numbers count as a spreadsheet does.

    Raises FileProblem when the file stops being readable part-way (a bad byte for its encoding, a cell over
    MAX_CELL_CHARS, a quote left open at the end of the file): the caller reports it and imports nothing.
    """
    with _open_text(path, info.encoding) as stream:
        lines = _Lines(stream)
        reader = _reader(lines, info.delimiter)
        number, seen_header, last = 0, False, []
        try:
            for record in reader:
                number += 1
                last, lines.record = lines.record, []
                if _is_blank(record):
                    continue
                if not seen_header:
                    seen_header = True
                    continue
                yield number, record
        except UnicodeDecodeError as exc:
            # The text stream decodes ahead of the csv reader (8 KiB at a time), so `number` can be many rows
            # before the bad byte: find the row that holds it.
            where = _row_of_bad_byte(path, info)
            place = f"on row {where}" if where else f"after row {number}"
            raise FileProblem(f"The file is not valid {info.encoding_label} text {place} "
                              f"(byte {exc.object[exc.start:exc.start + 1]!r}); save it again as UTF-8.") from exc
        except csv.Error as exc:
            raise FileProblem(f"Row {number + 1} cannot be read: {exc}.") from exc
        # The csv module (non-strict) ends a quote still open at the end of the file silently, with every line
        # after it in one cell: rows would vanish into it. An odd number of quotes over several lines is that.
        if len(last) > 1 and "".join(last).count('"') % 2:
            raise FileProblem(f"Row {number} opens a quote (\") that is never closed, so every line after it "
                              f"was read as one cell; close the quote or remove it.")


def sample_rows(path: Path, info: SourceInfo, limit: int = 5) -> list[list[str]]:
    """The first few data rows (for the mapping page)."""
    rows = []
    try:
        for _, cells in iter_rows(path, info):
            rows.append(cells)
            if len(rows) >= limit:
                break
    except FileProblem:
        pass
    return rows
