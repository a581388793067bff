"""Delivering a letter: recording the day it was delivered and thanking its signers."""

from datetime import date

from crm.audit.services import commit_audited
from crm.letters.models import Letter
from crm.letters.queries import signatories
from crm.letters.signatures import signer_address
from crm.letters.writing import set_status


def thank_signers(letter: Letter, user_id: int | None = None) -> int:
    """Queue a thank-you (the organizers' "Thank you (delivery)" wording) to each confirmed signer's authorizing
    or primary contact."""
    from crm.signon.mails import enqueue_signon_mail

    sent = 0
    for sig in signatories(letter):
        email, contact = signer_address(sig)
        if not email:
            continue
        enqueue_signon_mail(
            "thank-you", email, letter=letter, org_name=sig.listed_name, contact=contact,
            contact_name=sig.authorized_name, contact_title=sig.authorized_title,
            organization_id=sig.organization_id,
        )
        sent += 1
    commit_audited("thank", "letter", letter.id, user_id=user_id, summary=f"Thanked {sent} signers of {letter.slug}")
    return sent


def record_delivery(letter: Letter, delivered_on: date, *, thank: bool, user_id: int | None = None) -> int:
    """Mark the letter delivered on a date and maybe thank its signers; returns thank-yous queued."""
    set_status(letter, "delivered", delivered_on=delivered_on, user_id=user_id)
    return thank_signers(letter, user_id) if thank else 0
