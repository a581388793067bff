"""A configurable SMTP sink (aiosmtpd) for failure modes: refusals, temporary errors, 421s, dropped
connections.
"""

import asyncio
import email
import threading
import time
from collections import Counter

from aiosmtpd.controller import Controller


class Received(dict):
    """One accepted message: "from", "to" and "raw"; "message" (the parsed email) is parsed on first use.

    Parsing every message as it arrived cost the sink about 40% of its CPU (~0.8 ms a message), on the serial path
    of every multi-thousand-message test; few tests look at the parsed message.
    """

    def __missing__(self, key):
        if key != "message":
            raise KeyError(key)
        parsed = self["message"] = email.message_from_bytes(self["raw"])
        return parsed


class SinkHandler:
    """Accepts mail and records it, misbehaving on request.

    rcpt_replies: address → list of replies to give to its RCPT, one per attempt (then it is accepted).
    close_after: reply 421 to MAIL once a connection has carried this many messages.
    drop_on_data: addresses whose DATA is received (and recorded) but answered by closing the connection.
    on_accept: callback(count) after each accepted message, before the 250 is sent.
    pipelining: advertise PIPELINING (RFC 2920) as real MTAs do (the worker sends one command at a time anyway).
    delay: seconds to wait before answering each message's content, as a real relay takes tens of milliseconds.
    """

    def __init__(self, pipelining: bool = True, delay: float = 0.0):
        self.pipelining = pipelining
        self.delay = delay
        self.messages: list[Received] = []
        self.lock = threading.Lock()
        self.rcpt_replies: dict[str, list[str]] = {}
        self.close_after: int | None = None
        self.drop_on_data: set[str] = set()
        self.on_accept = None
        self.connections = 0
        self.per_connection: Counter = Counter()
        self.rcpt_attempts: Counter = Counter()
        self.in_flight = self.most_in_flight = 0  # messages whose content the sink is holding at once

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        """Count connections (every client says EHLO once per connection)."""
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        if self.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        """421 once the connection carried `close_after` messages."""
        if self.close_after and self.per_connection[id(session)] >= self.close_after:
            return "421 4.3.2 Too many messages on this connection, reconnect"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        """Scripted replies per address."""
        with self.lock:
            self.rcpt_attempts[address] += 1
            script = self.rcpt_replies.get(address)
            if script:
                return script.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        """Record the message; drop the connection instead of answering for drop_on_data addresses."""
        raw = envelope.original_content or envelope.content
        with self.lock:
            self.messages.append(Received({"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "raw": raw}))
            count = len(self.messages)
            self.per_connection[id(session)] += 1
        if set(envelope.rcpt_tos) & self.drop_on_data:
            server.transport.close()
            return "451 never seen"  # the connection is gone; the client never reads this
        if self.on_accept is not None:
            self.on_accept(count)
        if self.delay:
            with self.lock:
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
            await asyncio.sleep(self.delay)  # other sessions go on meanwhile
            with self.lock:
                self.in_flight -= 1
        return "250 2.0.0 Message accepted"

    def received_by(self) -> Counter:
        """How many messages each address got."""
        return Counter(address for m in self.messages for address in m["to"])


class Sink(SinkHandler):
    """The handler served on a loopback port."""

    def __init__(self, port: int, pipelining: bool = True, delay: float = 0.0):
        super().__init__(pipelining, delay)
        self.host, self.port = "127.0.0.1", port
        self.controller = Controller(self, hostname=self.host, port=port)
        self.outage: threading.Thread | None = None

    def start(self):
        """Serve."""
        self.controller.start()

    def stop(self):
        """Stop serving (after an outage in progress has ended)."""
        if self.outage is not None:
            self.outage.join()
        self.controller.stop()

    def refuse_for(self, seconds: float) -> threading.Thread:
        """Stop listening (connections are refused, open ones dropped) for `seconds`, then serve again on the same
        port: a relay restarting. Runs in a thread of its own, so a handler may call it; returns that thread."""

        def outage():
            self.controller.stop()
            time.sleep(seconds)
            self.controller = Controller(self, hostname=self.host, port=self.port)
            self.controller.start()

        thread = self.outage = threading.Thread(target=outage, name="sink-outage")
        thread.start()
        return thread
