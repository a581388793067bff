"""Handing one message to SMTP over a reused connection, and saying exactly what happened.

smtplib underneath, driven step by step (MAIL, RCPT, DATA, content) so that a dropped connection is classified
correctly: before the content was sent it is safe to retry; after, the server may have accepted it, so the outcome
is `uncertain` and the message is never re-sent automatically.
"""

import contextlib
import re
import smtplib
import ssl
from dataclasses import dataclass

_EOL = re.compile(rb"\r\n|\n|\r(?!\n)")
_DOT = re.compile(rb"(?m)^\.")


@dataclass
class Outcome:
    """The result of one attempt: sent / outbox, retry (4xx, dropped before content), failed (5xx), uncertain."""

    kind: str
    response: str
    hard_bounce: bool = False


class RelayUnavailable(Exception):
    """The SMTP server cannot be reached at all: nothing was sent, and no message should spend an attempt on it."""


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
    """One SMTP connection, opened on demand, reused for up to `max_per_connection` messages, reopened after a
    421 or a drop."""

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
    ):
        self.host, self.port, self.timeout = host, port, timeout
        self.use_tls, self.use_ssl = use_tls, use_ssl
        self.username, self.password = username, password
        self.max_per_connection = max(1, max_per_connection or 1)
        self.connection: smtplib.SMTP | None = None
        self.sent_on_connection = 0
        self.connections_opened = 0

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
        )

    def connect(self) -> None:
        """Make sure a connection is open (renewed after max_per_connection messages); RelayUnavailable if the
        server cannot be reached or refuses the session. Called before a message is marked `sending`."""
        if self.connection is not None and self.sent_on_connection >= self.max_per_connection:
            self.close()
        if self.connection is not None:
            return
        # Only when TLS is used: loading the system's CA certificates costs ~50 ms per connection.
        context = ssl.create_default_context() if self.use_ssl or self.use_tls else None
        try:
            if self.use_ssl:
                connection = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            else:
                connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        except (smtplib.SMTPException, OSError) as exc:
            raise RelayUnavailable(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        self.connections_opened += 1
        try:
            connection.ehlo()
            if self.use_tls:
                connection.starttls(context=context)
                connection.ehlo()
            if self.username:
                connection.login(self.username, self.password or "")
        except (smtplib.SMTPException, OSError) as exc:
            with contextlib.suppress(OSError):
                connection.close()
            raise RelayUnavailable(f"{self.host}:{self.port} refused the session: {exc}") from exc
        self.connection, self.sent_on_connection = connection, 0

    def drop(self) -> None:
        """Forget a broken connection without talking to it."""
        if self.connection is not None:
            with contextlib.suppress(OSError):
                self.connection.close()
        self.connection = None

    def close(self) -> None:
        """QUIT politely (ignoring a server that already left)."""
        if self.connection is None:
            return
        with contextlib.suppress(smtplib.SMTPException, OSError):
            self.connection.quit()
        self.drop()

    def _refused(self, code: int, reply: bytes, stage: str) -> Outcome:
        """Classify a non-success reply; keep the connection usable (RSET) or drop it (421)."""
        response = f"{stage}: {_text(code, reply)}"
        if code == 421 or code < 400:
            self.drop()
            return Outcome("retry", response)
        try:
            self.connection.rset()
        except (smtplib.SMTPException, OSError):
            self.drop()
        if code < 500:
            return Outcome("retry", response)
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        return Outcome("failed", response, hard_bounce=stage == "RCPT" and text.lstrip().startswith("5.1."))

    def send(self, envelope_from: str, recipient: str, raw: str) -> Outcome:
        """Send one message to one recipient over the open connection (opened here if needed)."""
        if not (envelope_from.isascii() and recipient.isascii()):
            return Outcome("failed", "not sent: the address is not ASCII (SMTPUTF8 is not supported)")
        try:
            self.connect()
        except RelayUnavailable as exc:
            return Outcome("retry", str(exc))
        connection = self.connection
        try:
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
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.drop()
            return Outcome("retry", f"connection lost before the message was sent: {exc or type(exc).__name__}")
        # From the first byte of content on, the server may accept the message whatever happens to us next.
        try:
            connection.send(prepare(raw))
            code, reply = connection.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.drop()
            return Outcome(
                "uncertain",
                f"connection lost after the message was sent and before the server answered: "
                f"{exc or type(exc).__name__}",
            )
        self.sent_on_connection += 1
        if code == 250:
            return Outcome("sent", _text(code, reply))
        return self._refused(code, reply, "end of DATA")


class OutboxTransport:
    """MAIL_BACKEND=outbox: nothing leaves; the message stays readable in the Outbox page."""

    connections_opened = 0

    def connect(self) -> None:
        """Nothing to connect to."""

    def send(self, envelope_from: str, recipient: str, raw: str) -> Outcome:
        """Keep the message."""
        return Outcome("outbox", "kept in the outbox (MAIL_BACKEND=outbox)")

    def close(self) -> None:
        """Nothing to close."""


def transport_for(config):
    """The transport MAIL_BACKEND asks for."""
    if (config.get("MAIL_BACKEND") or "outbox") == "smtp":
        return SMTPTransport.from_config(config)
    return OutboxTransport()
