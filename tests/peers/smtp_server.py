#!/usr/bin/env python3
"""A real SMTP server for thongsuot's tests (aiosmtpd), on loopback only.

Each accepted message is decoded with Python's email package and saved as one JSON file in
--dir: envelope, decoded subject, text and HTML parts, and the time it was accepted.
Prints READY once listening. Options make it demand STARTTLS and AUTH, or refuse recipients
of a domain with a permanent 550.
"""
import argparse
import email
import email.policy
import json
import os
import signal
import ssl
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Saver:
    def __init__(self, directory, reject_domain):
        self.directory = directory
        self.reject_domain = reject_domain
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject_domain and address.endswith("@" + self.reject_domain):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        record = {
            "accepted_at": time.time(),
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "subject": str(msg["subject"]),
            "to": str(msg["to"]),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
            "content_type": msg.get_content_type(),
            "tls": session.ssl is not None,
            "authenticated": bool(session.authenticated),
        }
        with self.lock:
            self.count += 1
            name = os.path.join(self.directory, "%05d.json" % self.count)
        tmp = name + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f, ensure_ascii=False)
        os.rename(tmp, name)
        return "250 Message accepted"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--auth", help="user:password; AUTH is then required")
    p.add_argument("--reject-domain")
    a = p.parse_args()

    kwargs = {}
    if a.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)
        kwargs.update(tls_context=ctx, require_starttls=True)
    if a.auth:
        user, password = a.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password
            return AuthResult(success=ok, handled=False)

        kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=bool(a.cert))
    controller = Controller(Saver(a.dir, a.reject_domain), hostname="127.0.0.1", port=a.port, **kwargs)
    controller.start()
    print("READY", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # Bounded: a forgotten server ends by itself after an hour.
    stop.wait(3600)
    controller.stop()


if __name__ == "__main__":
    sys.exit(main())
