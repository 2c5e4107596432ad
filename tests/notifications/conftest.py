"""Fixtures of the notification tests: a real SMTP server, a recording webhook receiver, quick settings."""

from __future__ import annotations

import json
import threading
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@pytest.fixture(autouse=True)
def quick_notifications(app, monkeypatch):
    """No settle delay for the outbox and a fast back-off, so the tests need not wait; no channels set."""
    for name, value in {"NOTIFY_SETTLE_SECONDS": 0, "NOTIFY_RETRY_SECONDS": 0.05, "NOTIFY_RETRY_MAX_SECONDS": 0.2,
                        "SMTP_HOST": None, "WECOM_WEBHOOK": None, "DINGTALK_WEBHOOK": None, "DINGTALK_SECRET": None,
                        "WECOM_CORP_ID": None, "WECOM_SECRET": None, "WECOM_AGENT_ID": None, "DIGEST_HOUR": 0,
                        "PUBLIC_URL": "https://hall.example.edu.cn"}.items():
        monkeypatch.setitem(app.config, name, value)


class SMTPRecorder:
    """An aiosmtpd handler that keeps the parsed mails, or refuses every recipient when told to."""

    def __init__(self):
        self.mails = []
        self.refuse = False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return "550 5.7.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.mails.append(BytesParser(policy=policy.default).parsebytes(envelope.original_content))
        return "250 Message accepted"


@pytest.fixture
def smtp_server(app, monkeypatch):
    """A real SMTP server on a free local port; the hall's SMTP settings point at it."""
    from aiosmtpd.controller import Controller

    from tests.test_worker import _free_port

    recorder = SMTPRecorder()
    port = _free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setitem(app.config, "SMTP_HOST", "127.0.0.1")
    monkeypatch.setitem(app.config, "SMTP_PORT", port)
    monkeypatch.setitem(app.config, "SMTP_FROM", "hall@example.edu.cn")
    yield recorder
    controller.stop()


class Receiver:
    """Records every webhook post; answers with the queued status codes (then 200), or holds a request."""

    def __init__(self):
        self.requests = []  # (path, headers, body) of every request received
        self.completed = []  # idempotency keys of the requests answered 200
        self.statuses = []
        self.hold = threading.Event()  # set: the next request is held until `release` is set
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def keys(self) -> set:
        return {headers.get("X-Hall-Idempotency-Key") for _, headers, _ in self.requests}


def start_receiver() -> Receiver:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self, status: int, payload: dict):
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # WeCom gettoken
            with receiver.lock:
                receiver.requests.append((self.path, dict(self.headers), None))
            self._answer(200, {"errcode": 0, "errmsg": "ok", "access_token": "token-1", "expires_in": 7200})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null")
            with receiver.lock:
                receiver.requests.append((self.path, dict(self.headers), body))
                held = receiver.hold.is_set()
                if held:
                    receiver.hold.clear()
                status = receiver.statuses.pop(0) if receiver.statuses else 200
            if held:
                # Never answered: the sender dies while this request is open.
                receiver.release.wait(60)
                return
            if status != 200:
                self._answer(status, {"errcode": -1, "errmsg": "server error"})
                return
            with receiver.lock:
                receiver.completed.append(self.headers.get("X-Hall-Idempotency-Key"))
            self._answer(200, {"errcode": 0, "errmsg": "ok"})

    receiver.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.server.daemon_threads = True
    threading.Thread(target=receiver.server.serve_forever, daemon=True).start()
    return receiver


@pytest.fixture
def receiver():
    """A local HTTP server standing in for the WeCom and DingTalk endpoints."""
    receiver = start_receiver()
    yield receiver
    receiver.release.set()
    receiver.server.shutdown()
    receiver.server.server_close()


def process_with_properties(process_id: str, props: dict, **kwargs) -> bytes:
    """bpmn_sequence with process-level extension properties (escalateTo, remindBeforeHours)."""
    from tests.conftest import bpmn_sequence

    xml = bpmn_sequence(process_id, 1, **kwargs).decode()
    values = "".join(f'<spiffworkflow:property name="{k}" value="{v}"/>' for k, v in props.items())
    head = 'isExecutable="true">'
    return xml.replace(head, head + f"<bpmn:extensionElements><spiffworkflow:properties>{values}"
                       "</spiffworkflow:properties></bpmn:extensionElements>", 1).encode()
