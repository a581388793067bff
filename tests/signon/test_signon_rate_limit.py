"""The public sign-on form is rate-limited per IP address (configurable)."""

import re

import pytest

from crm.extensions import limiter
from crm.letters.models import Letter


@pytest.fixture
def app_config():
    """Rate limiting on, lowered so the test reaches it."""
    return {"RATELIMIT_ENABLED": True, "SIGNON_RATE_LIMIT": "2 per minute", "SIGNON_MIN_FILL_SECONDS": 0}


def test_the_third_sign_on_in_a_minute_is_refused(client, db):
    db.session.add(Letter(slug="limits", title="Limits", status="collecting", public_signon=True))
    db.session.commit()
    limiter.reset()
    page = client.get("/sign/limits").get_data(as_text=True)
    started = re.search(r'name="started" type="hidden" value="([^"]+)"', page).group(1)
    form = {
        "organization_name": "Quick Org",
        "contact_name": "Q",
        "email": "q@quick.example",
        "consent_public": "y",
        "started": started,
    }
    codes = [client.post("/sign/limits", data=form).status_code for _ in range(3)]
    limiter.reset()
    assert codes == [200, 200, 429]
