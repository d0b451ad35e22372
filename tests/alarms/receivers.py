"""Real notification receivers on loopback for the tests: an HTTP server (Apprise ``json://``)
and an SMTP server (``aiosmtpd``, Apprise ``mailto://``), each in its own thread."""

from __future__ import annotations

import json
import threading
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from tests.procs import free_port


class HttpReceiver:
    """Keeps every JSON body POSTed to it; ``fail`` makes it answer 500."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail = False
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if receiver.fail:
                    self.send_response(500)
                else:
                    with receiver._lock:
                        receiver.bodies.append(body)
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "alarms") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def titles(self) -> list[str]:
        with self._lock:
            return [str(b.get("title", "")) for b in self.bodies]


class _MailHandler:
    def __init__(self, box: list[Any]) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.box.append(envelope)
        return "250 OK"


class SmtpReceiver:
    """An SMTP server keeping every mail (subject, recipients, body)."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.port = free_port()
        self.controller = Controller(_MailHandler(self.envelopes), hostname="127.0.0.1",
                                     port=self.port)

    def url(self, to: str = "night@lab.local") -> str:
        return (f"mailto://127.0.0.1:{self.port}?mode=insecure&from=alarms@lab.local"
                f"&to={to}")

    def __enter__(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def mails(self) -> list[dict[str, Any]]:
        out = []
        for env in list(self.envelopes):
            mail = message_from_bytes(env.content, policy=policy.default)
            body = mail.get_body(preferencelist=("plain",))
            out.append({"to": list(env.rcpt_tos), "subject": str(mail["subject"]),
                        "body": body.get_content() if body is not None else ""})
        return out

    def subjects(self) -> list[str]:
        return [m["subject"] for m in self.mails()]
