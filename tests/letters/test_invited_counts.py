"""Invitations kept by the development outbox (MAIL_BACKEND=outbox, the default of `make run`) count as invitations
wherever a letter's "invited" is shown, as they count for follow-ups: the letters list, the letter page and
`crm letter show`."""

import json
import re

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.letters.queries import status_counts
from crm.mailmerge import queueing
from crm.mailmerge.models import Message
from crm.mailmerge.worker import drain
from tests.factories import LetterFactory
from tests.mailmerge.conftest import make_recipients, new_merge

pytestmark = [pytest.mark.bothdb, pytest.mark.commits]


def test_invitations_kept_by_the_outbox_are_counted(app, client, as_role, runner):
    assert app.config["MAIL_BACKEND"] == "outbox"
    letter = LetterFactory(slug="outbox-invite", title="Outbox invitation", status="collecting")
    make_recipients(3)
    merge = new_merge(body="Sign: {{ sign_on_url }}", letter=letter.slug)
    queueing.queue_merge(merge)
    drain()
    db.session.expire_all()
    assert set(db.session.scalars(select(Message.status).where(Message.merge_id == merge.id))) == {"outbox"}

    counts = status_counts([letter.id])[letter.id]
    assert (counts["invited"], counts["invited_unsigned"]) == (3, 3)
    as_role("viewer")
    index = client.get("/letters").get_data(as_text=True)
    row = index[index.index("/letters/outbox-invite"):]
    row = row[: row.index("</tr>")]
    # Signed 0, invited 3, not signed yet 3, pending 0, awaiting review 0, declined 0.
    assert re.findall(r'<td class="text-end">(?:<a[^>]*>)?(\d+)', row) == ["0", "3", "3", "0", "0", "0"]
    assert "3 invited by mail merge, 3 not signed yet" in client.get("/letters/outbox-invite").get_data(as_text=True)
    shown = runner.invoke(args=["letter", "show", "outbox-invite", "--json"])
    assert shown.exit_code == 0 and json.loads(shown.output)["counts"]["invited"] == 3
    assert "invited by mail merge: 3 organizations" in runner.invoke(args=["letter", "show", "outbox-invite"]).output
