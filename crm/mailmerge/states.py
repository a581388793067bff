"""The words for a message's state, the same on every page that shows one (merge page, report, outbox, message).

The outbox has more statuses than an organizer needs to tell apart: `claimed` (a worker took the row) and `sending`
(it is being handed to SMTP) are both "Sending"; `outbox` is mail the development outbox kept.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class State:
    """A label, a colour for its badge and one line saying what it means."""

    label: str
    colour: str
    help: str


MESSAGE_STATES: dict[str, State] = {
    "queued": State("Queued", "secondary", "Waiting for its turn to be sent."),
    "claimed": State("Sending", "primary", "Being sent now."),
    "sending": State("Sending", "primary", "Being sent now."),
    "sent": State("Sent", "success", "Accepted by the mail server."),
    "outbox": State("Kept in outbox", "info", "Kept by the development outbox (MAIL_BACKEND=outbox): nobody received "
                                              "it; read it under Mail → Outbox."),
    "failed": State("Failed", "danger", "Refused by the mail server for good, or every retry failed: not delivered."),
    "suppressed": State("Suppressed", "dark", "Not sent: the address unsubscribed, bounced, complained or was "
                                              "suppressed by hand."),
    "uncertain": State("Uncertain", "warning", "The connection broke while the message was handed over: it may or "
                                               "may not have arrived. Resend only if you know it did not."),
    "cancelled": State("Cancelled", "secondary", "Not sent: the merge was cancelled first."),
}
# The order the states are listed in (report filters, legend); `claimed` shows as Sending.
LISTED = ("queued", "sending", "sent", "outbox", "failed", "suppressed", "uncertain", "cancelled")


def message_state(status: str) -> State:
    """The words for a status (an unknown one is shown as it is)."""
    return MESSAGE_STATES.get(status) or State(status.capitalize(), "secondary", "")
