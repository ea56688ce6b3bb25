"""Sending: one MIME message (plain text with an HTML alternative) per recipient, with SES ``SendRawEmail``.

:func:`classify` tells transient SES errors (throttling, 5xx, network), which
the state machine's Retry may cure, from permanent ones (``MessageRejected``
in the sandbox, an unverified sender, a spent daily quota), which are
recorded and never raised.

Example:
    >>> rejected = ClientError({"Error": {"Code": "MessageRejected", "Message": "Email address is not verified."}},
    ...                        "SendRawEmail")
    >>> classify(rejected).transient
    False
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr
from typing import Any

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from keyrotation.aws import THROTTLING_CODES, TRANSIENT_CODES, error_code
from keyrotation.notifications.rendered import RenderedEmail
from keyrotation.notifications.settings import PRODUCT
from keyrotation.notifications.values import clip, header


@dataclass(frozen=True)
class SendFailure:
    """Why SES did not take a message. ``transient``: a later attempt may succeed."""

    code: str
    message: str
    transient: bool
    throttled: bool = False


def classify(error: ClientError) -> SendFailure:
    """Transient (throttling, 5xx) or permanent (everything else: rejected, unverified sender, quota).

    >>> throttled = ClientError({"Error": {"Code": "Throttling", "Message": "Maximum sending rate exceeded."}},
    ...                         "SendRawEmail")
    >>> classify(throttled).transient, classify(throttled).throttled
    (True, True)
    """
    code = error_code(error)
    message = clip(str(error.response.get("Error", {}).get("Message", "")), 500)
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in THROTTLING_CODES:
        # A spent daily quota does not come back within the state machine's retries.
        daily = "daily" in message.lower()
        return SendFailure(code, message, transient=not daily, throttled=not daily)
    if code in TRANSIENT_CODES or status >= 500:
        return SendFailure(code or str(status), message, transient=True)
    return SendFailure(code or str(status), message, transient=False)


def compose(sender: str, recipient: str, email: RenderedEmail, reply_to: str | None = None) -> bytes:
    """One MIME message: plain text, with the HTML as its alternative, both UTF-8."""
    message = EmailMessage()
    message["Subject"] = header(email.subject)
    message["From"] = formataddr((PRODUCT, sender))
    message["To"] = recipient
    if reply_to:
        message["Reply-To"] = reply_to
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(email.text, charset="utf-8")
    message.add_alternative(email.html, subtype="html", charset="utf-8")
    return message.as_bytes(policy=SMTP)


@dataclass(frozen=True)
class SendResult:
    """SES's message id when it took the message, else why not."""

    message_id: str | None = None
    failure: SendFailure | None = None


class Mailer:
    """Sends through SES ``SendRawEmail`` from the verified ``sender``, one recipient per message."""

    def __init__(self, ses: Any, sender: str, reply_to: str | None = None) -> None:
        self._ses = ses
        self.sender = sender
        self.reply_to = reply_to

    def send(self, recipient: str, email: RenderedEmail) -> SendResult:
        raw = compose(self.sender, recipient, email, self.reply_to)
        try:
            response = self._ses.send_raw_email(Source=self.sender, RawMessage={"Data": raw})
        except ClientError as error:
            return SendResult(failure=classify(error))
        except (ConnectionError, HTTPClientError) as error:
            return SendResult(failure=SendFailure(type(error).__name__, "SES could not be reached", transient=True))
        return SendResult(message_id=str(response["MessageId"]))
