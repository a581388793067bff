"""Handing messages to SMTP over one reused connection, and saying exactly what happened.

smtplib underneath, driven step by step (MAIL, RCPT, DATA) so that a dropped connection is classified
correctly: before the message content was sent it is safe to retry; after, the server may have accepted it, so the
outcome is `uncertain` and the message is never re-sent automatically.

When the server advertises PIPELINING (RFC 2920), MAIL, RCPT and DATA go out in one write and their three replies
are read in order: one round trip for the envelope instead of three. The replies are checked exactly as in the
step-by-step dialogue. The next message's envelope may also follow a message's content in the same group (RFC 2920
lets the content open a group and DATA close it; see finish): one round trip per message. Its `sending` mark is
still committed before its content goes out, and a server left waiting for content that will not come is
disconnected, which delivers nothing.
"""

import contextlib
import re
import smtplib
import ssl
from dataclasses import dataclass
from functools import lru_cache

_EOL = re.compile(rb"\r\n|\n|\r(?!\n)")
_DOT = re.compile(rb"(?m)^\.")
# An address smtplib.quoteaddr would return unchanged inside <…> (checked against it in the tests); anything else
# goes through quoteaddr, which parses it (slowly) with email.utils.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9_%+'=!#$&*/?^`{|}~-]+(?:\.[A-Za-z0-9_%+'=!#$&*/?^`{|}~-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)
_EXPECTED = {"MAIL": (250,), "RCPT": (250, 251), "DATA": (354,)}


@lru_cache(maxsize=64)
def _quote_cached(address: str) -> str:
    """smtplib.quoteaddr, remembered (a merge has one envelope sender)."""
    return smtplib.quoteaddr(address)


def quote_address(address: str) -> str:
    """`<address>` for MAIL FROM / RCPT TO, as smtplib.quoteaddr gives it."""
    return f"<{address}>" if _PLAIN_ADDRESS.fullmatch(address) else _quote_cached(address)


@dataclass
class Outcome:
    """The result of one attempt: sent, retry (4xx, dropped before content), failed (5xx), or uncertain."""

    kind: str
    response: str
    hard_bounce: bool = False


def _text(code: int | None, reply: bytes | str | None) -> str:
    """'250 2.0.0 Ok' from a code and reply bytes."""
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return f"{code} {reply or ''}".strip() if code is not None else (reply or "")


def prepare(raw: str) -> bytes:
    """The DATA payload: CRLF line endings, leading dots doubled, terminated by CRLF.CRLF."""
    data = _DOT.sub(b"..", _EOL.sub(b"\r\n", raw.encode("utf-8")))
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class SMTPTransport:
    """One SMTP connection, opened lazily, reused for up to `max_per_connection` messages, reopened after a
    421.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float = 30.0,
        use_tls: bool = False,
        use_ssl: bool = False,
        username: str | None = None,
        password: str | None = None,
        max_per_connection: int = 500,
        pipelining: bool = True,
    ):
        self.host, self.port, self.timeout = host, port, timeout
        self.use_tls, self.use_ssl = use_tls, use_ssl
        self.username, self.password = username, password
        self.max_per_connection = max(1, max_per_connection or 1)
        self.pipelining = pipelining
        self.connection: smtplib.SMTP | None = None
        self.sent_on_connection = 0
        self.connections_opened = 0
        # The next message's envelope, written with this one's content (see begin): (envelope_from, recipient) until
        # its replies are read, then (envelope_from, recipient, the Outcome refusing it, or None when the server
        # answered DATA with 354 and waits for the content).
        self.announcing: tuple[str, str] | None = None
        self.announced: tuple[str, str, Outcome | None] | None = None

    @classmethod
    def from_config(cls, config) -> "SMTPTransport":
        """A transport for the app's MAIL_* settings."""
        return cls(
            config.get("MAIL_SERVER") or "localhost",
            int(config.get("MAIL_PORT") or 25),
            timeout=float(config.get("MAIL_TIMEOUT") or 30),
            use_tls=bool(config.get("MAIL_USE_TLS")),
            use_ssl=bool(config.get("MAIL_USE_SSL")),
            username=config.get("MAIL_USERNAME"),
            password=config.get("MAIL_PASSWORD"),
            max_per_connection=int(config.get("MAIL_MAX_EMAILS") or 500),
            pipelining=bool(config.get("MAIL_PIPELINING", True)),
        )

    def _open(self) -> smtplib.SMTP:
        """Connect, say EHLO, STARTTLS and log in as configured."""
        # Only when TLS is used: loading the system's CA certificates costs ~50 ms per connection.
        context = ssl.create_default_context() if self.use_ssl or self.use_tls else None
        if self.use_ssl:
            connection = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        self.connections_opened += 1
        connection.ehlo()
        if self.use_tls:
            connection.starttls(context=context)
            connection.ehlo()
        if self.username:
            connection.login(self.username, self.password or "")
        self.sent_on_connection = 0
        return connection

    def _ensure(self) -> smtplib.SMTP:
        """The open connection, renewed after max_per_connection messages."""
        if self.connection is not None and self.sent_on_connection >= self.max_per_connection:
            self.close()
        if self.connection is None:
            self.connection = self._open()
        return self.connection

    def drop(self) -> None:
        """Forget a broken connection without talking to it."""
        self.announced = self.announcing = None
        if self.connection is not None:
            with contextlib.suppress(OSError):
                self.connection.close()
        self.connection = None

    def close(self) -> None:
        """QUIT politely (ignoring a server that already left)."""
        if self.connection is None:
            return
        if self.announced is not None or self.announcing is not None:
            self.abandon()
            return
        with contextlib.suppress(smtplib.SMTPException, OSError):
            self.connection.quit()
        self.drop()

    def abandon(self) -> None:
        """The announced next message will not be sent now (suppressed, paused, not renderable): a server that
        took its DATA waits for content, and only disconnecting gets out of that without delivering anything."""
        if self.announced is not None or self.announcing is not None:
            self.drop()

    def _refused(self, code: int, reply: bytes, stage: str, reset: bool = True) -> Outcome:
        """Classify a non-success reply; keep the connection usable (RSET, unless the next envelope is already
        on its way) or drop it (421)."""
        response = f"{stage}: {_text(code, reply)}"
        if code == 421 or code < 400:
            self.drop()
            return Outcome("retry", response)
        try:
            if reset:
                self.connection.rset()
        except (smtplib.SMTPException, OSError):
            self.drop()
        if code < 500:
            return Outcome("retry", response)
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        return Outcome("failed", response, hard_bounce=stage == "RCPT" and text.lstrip().startswith("5.1."))

    def send(self, envelope_from: str, recipient: str, raw: str) -> Outcome:
        """Send one message to one recipient."""
        return self.begin(envelope_from, recipient, raw) or self.finish()

    def begin(
        self, envelope_from: str, recipient: str, raw: str, while_waiting=None, then=None
    ) -> Outcome | None:
        """MAIL, RCPT, DATA and the content; None once the content is on its way (call finish() for the
        server's answer — the caller may do other work, such as rendering the next message, meanwhile).
        `while_waiting()` is called while the server answers a pipelined envelope.

        With pipelining, `then()` may return the (envelope_from, recipient) of the next message: its MAIL, RCPT
        and DATA go out in the same write as this content (RFC 2920: content may open a group, DATA closes it),
        their replies are read by finish() after this message's, and the next begin() for that message sends
        only its content. Not beyond the connection's MAIL_MAX_EMAILS."""
        if not (envelope_from.isascii() and recipient.isascii()):
            self.abandon()
            return Outcome("failed", "not sent: the address is not ASCII (SMTPUTF8 is not supported)")
        announced, self.announced = self.announced, None
        if announced is not None and announced[:2] == (envelope_from, recipient):
            return announced[2] or self._content(self.connection, raw, then)
        if announced is not None:  # announced for another message: its server waits for content
            self.announced = announced
            self.abandon()
        try:
            connection = self._ensure()
        except (smtplib.SMTPException, OSError) as exc:
            self.drop()
            return Outcome("retry", f"cannot connect to {self.host}:{self.port}: {exc}")
        try:
            if self.pipelining and connection.has_extn("pipelining"):
                refused = self._envelope_pipelined(connection, envelope_from, recipient, while_waiting)
            else:
                refused = self._envelope_stepwise(connection, envelope_from, recipient)
            if refused is not None:
                return refused
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.drop()
            return Outcome(
                "retry", f"connection lost before the message was sent: {exc or type(exc).__name__}"
            )
        return self._content(connection, raw, then)

    def _content(self, connection: smtplib.SMTP, raw: str, then=None) -> Outcome | None:
        """Send the content after a 354 (and the next envelope, see begin); None once it is on its way."""
        data = prepare(raw)
        announce = then() if then is not None and self._may_announce() else None
        if announce is not None:
            try:
                data += _envelope(*announce)
            except ValueError:
                announce = None  # a line break in an address: its own begin() refuses it
        try:
            connection.send(data)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            return self._lost_after_content(exc)
        self.announcing = announce
        return None

    def _envelope_stepwise(self, connection: smtplib.SMTP, envelope_from: str, recipient: str) -> Outcome | None:
        """MAIL, RCPT and DATA one after the other; None when the server waits for the content (354)."""
        code, reply = connection.mail(envelope_from)
        if code != 250:
            return self._refused(code, reply, "MAIL")
        code, reply = connection.rcpt(recipient)
        if code not in (250, 251):
            return self._refused(code, reply, "RCPT")
        connection.putcmd("data")
        code, reply = connection.getreply()
        if code != 354:
            return self._refused(code, reply, "DATA")
        return None

    def _envelope_pipelined(
        self, connection: smtplib.SMTP, envelope_from: str, recipient: str, while_waiting=None
    ) -> Outcome | None:
        """MAIL, RCPT and DATA in one write (RFC 2920), then their replies in order; None on 354."""
        connection.send(_envelope(envelope_from, recipient))
        if while_waiting is not None:
            while_waiting()
        return self._envelope_replies(connection)

    def _envelope_replies(self, connection: smtplib.SMTP) -> Outcome | None:
        """Check the replies to a pipelined MAIL, RCPT and DATA; None on 354."""
        refused = None
        for stage in ("MAIL", "RCPT", "DATA"):
            code, reply = connection.getreply()
            if refused is None and code not in _EXPECTED[stage]:
                refused = (code, reply, stage)
                if code == 421:
                    break  # the server is closing the connection: the later replies will not come
            elif refused is not None and stage == "DATA" and code == 354:
                # A server that takes DATA although the envelope was refused now waits for content we will not
                # send: only dropping the connection gets out of that state without delivering anything.
                self.drop()
                return Outcome("retry" if refused[0] < 500 else "failed", f"{refused[2]}: {_text(*refused[:2])}")
        return self._refused(*refused) if refused is not None else None

    def _lost_after_content(self, exc: Exception) -> Outcome:
        """The connection died once (part of) the content was sent: the server may have accepted it."""
        self.drop()
        return Outcome(
            "uncertain",
            "connection lost after the message was sent and before the server "
            f"answered: {exc or type(exc).__name__}",
        )

    def finish(self) -> Outcome:
        """The server's answer to the content sent by begin(), then to the next envelope sent with it."""
        announce, self.announcing = self.announcing, None
        try:
            code, reply = self.connection.getreply()
        except (smtplib.SMTPServerDisconnected, OSError, AttributeError) as exc:
            return self._lost_after_content(exc)
        self.sent_on_connection += 1
        if code == 250:
            outcome = Outcome("sent", _text(code, reply))
        else:
            outcome = self._refused(code, reply, "end of DATA", reset=announce is None)
        if announce is not None and self.connection is not None:
            try:
                refused = self._envelope_replies(self.connection)
            except (smtplib.SMTPServerDisconnected, OSError):
                self.drop()  # nothing of the next message was sent: its begin() starts afresh
            else:
                # Refused with a 421 or worse, the connection is gone: its begin() reconnects and tries again.
                self.announced = (*announce, refused) if self.connection is not None else None
        return outcome

    def _may_announce(self) -> bool:
        """Whether the next envelope may follow the content now."""
        connection = self.connection
        return (
            self.pipelining
            and connection is not None
            and connection.has_extn("pipelining")
            and self.sent_on_connection + 2 <= self.max_per_connection
        )


def _envelope(envelope_from: str, recipient: str) -> bytes:
    """MAIL, RCPT and DATA as one pipelined group (ValueError on a line break, as smtplib.putcmd)."""
    mail, rcpt = f"mail FROM:{quote_address(envelope_from)}", f"rcpt TO:{quote_address(recipient)}"
    if any(c in mail or c in rcpt for c in "\r\n"):
        # What smtplib.putcmd refuses too: a line break would smuggle in another command.
        raise ValueError("an envelope address contains a line break")
    return f"{mail}\r\n{rcpt}\r\ndata\r\n".encode("ascii")


class OutboxTransport:
    """MAIL_BACKEND=outbox: nothing leaves; the message stays readable in the Outbox page."""

    connections_opened = 0

    def send(self, envelope_from: str, recipient: str, raw: str) -> Outcome:
        """Keep the message."""
        return Outcome("outbox", "kept in the outbox (MAIL_BACKEND=outbox)")

    def begin(self, envelope_from: str, recipient: str, raw: str, while_waiting=None, then=None) -> Outcome | None:
        """Nothing to hand over; finish() answers."""
        return None

    def finish(self) -> Outcome:
        """Kept."""
        return Outcome("outbox", "kept in the outbox (MAIL_BACKEND=outbox)")

    def abandon(self) -> None:
        """Nothing announced."""

    def close(self) -> None:
        """Nothing to close."""
