"""What the signatory import would do with each line (a Candidate), and the report of it as CSV."""

import csv
import io
from dataclasses import dataclass, field

REPORT_COLUMNS = ("line", "text", "action", "organization", "confidence", "candidates", "reason")
ACTIONS = ("matched", "new", "review", "skipped")


@dataclass
class Candidate:
    """One line of the pasted text (or one name of an inline paragraph) and what the import would do with it."""

    line: int
    text: str
    action: str
    name: str = ""
    organization_id: int | None = None
    organization: str = ""
    confidence: float = 0.0
    reason: str = ""
    # Where this name sits: "12" for a line, "12.3" for the third name of an inline paragraph on line 12.
    key: str = ""
    # Up to three (organization id, name, score, why) proposed for review, best first.
    proposals: list[tuple[int, str, float, str]] = field(default_factory=list)

    def report_row(self) -> list[str]:
        """The line as a report CSV row."""
        skipped = self.action == "skipped"
        return [
            str(self.line),
            self.text,
            self.action,
            self.organization,
            f"{self.confidence:.2f}" if not skipped else "",
            "; ".join(f"{name} ({score:.2f})" for _, name, score, _ in self.proposals[:3]),
            self.reason,
        ]


def report_csv(candidates: list[Candidate]) -> str:
    """The report as CSV text: line,text,action,organization,confidence,candidates,reason."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    for candidate in candidates:
        row = candidate.report_row()
        writer.writerow(["'" + cell if cell[:1] in ("=", "+", "-", "@") else cell for cell in row])
    return out.getvalue()
