"""A real SMTP server for tests (aiosmtpd on 127.0.0.1, a free port)."""

from __future__ import annotations

import socket
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """Keeps every message; answers 451 to the next `fail_next` messages."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.raw: list[bytes] = []
        self.fail_next = 0

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001
        if self.fail_next > 0:
            self.fail_next -= 1
            return "451 4.3.0 try again later"
        self.raw.append(envelope.original_content or envelope.content)
        self.messages.append(message_from_bytes(self.raw[-1], policy=default_policy))
        return "250 OK"


def start_smtp() -> tuple[Controller, Recorder]:
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller, recorder


def smtp_settings_for(app, controller: Controller):  # noqa: ANN001, ANN201
    """The app's settings with mail going to the test's SMTP server (no TLS) and a
    public URL for the links in the mails."""
    from config.settings import load_settings

    return load_settings(
        env={},
        **{
            **app.config["FV"].values,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": controller.port,
            "SMTP_SECURITY": "none",
            "PUBLIC_URL": "https://fv.example.cn",
        },
    )
