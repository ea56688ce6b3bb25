"""Every email a demo sent, written for a person to open: ``preview/demo/NNN-<recipient>.txt`` and ``.html``,
and ``index.html`` / ``index.txt`` listing them (the run that sent each, its recipient and subject).

The emails are read back from the in-memory SES, exactly as they were sent (the raw MIME message), so
what is written is what a recipient would have received; the product never puts a secret in an email,
and ``tests/test_demo.py`` scans these files for every secret the demo's AWS made.

Example:
    >>> emails = read_sent(messages, runs_by_message)        # doctest: +SKIP
    >>> write(emails, Path("preview/demo"))                   # doctest: +SKIP
"""

from __future__ import annotations

import email
import email.policy
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_NOT_IN_FILE_NAME = re.compile(r"[^A-Za-z0-9.@-]+")


@dataclass(frozen=True)
class SentEmail:
    number: int
    run: str
    recipient: str
    subject: str
    text: str
    html: str

    @property
    def stem(self) -> str:
        return f"{self.number:03d}-{_NOT_IN_FILE_NAME.sub('_', self.recipient)[:60]}"


def sent_messages(account_id: str, region: str) -> list[Any]:
    """What the in-memory SES of ``account_id`` recorded, oldest first."""
    from moto.ses.models import ses_backends

    return list(ses_backends[account_id][region].sent_messages)


def read_sent(messages: Sequence[Any], runs: Sequence[str]) -> list[SentEmail]:
    """Each sent message as a :class:`SentEmail`; ``runs[n]`` is the title of the run that sent message ``n``."""
    emails = []
    for number, (sent, run) in enumerate(zip(messages, runs, strict=True), start=1):
        message = email.message_from_string(sent.raw_data, policy=email.policy.default)
        parts = {part.get_content_type(): part for part in message.walk() if not part.is_multipart()}
        text = str(parts["text/plain"].get_content()) if "text/plain" in parts else ""
        body = str(parts["text/html"].get_content()) if "text/html" in parts else ""
        recipient = str(message["To"] or "").strip()
        emails.append(SentEmail(number, run, recipient, str(message["Subject"] or ""), text, body))
    return emails


def write(emails: Sequence[SentEmail], directory: Path) -> list[Path]:
    """Write every email (.txt and .html) and the index into ``directory``, emptied of an earlier demo's files."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*"):
        if old.is_file() and old.suffix in (".txt", ".html"):
            old.unlink()
    written = []
    for sent in emails:
        for suffix, content in ((".txt", sent.text), (".html", sent.html)):
            path = directory / f"{sent.stem}{suffix}"
            path.write_text(content, encoding="utf-8")
            written.append(path)
    written += [_index_text(emails, directory), _index_html(emails, directory)]
    return written


def _index_text(emails: Sequence[SentEmail], directory: Path) -> Path:
    lines = [f"{len(emails)} emails sent by `make demo`, in the order they were sent:", ""]
    for sent in emails:
        lines.append(f"{sent.stem}.txt / .html  [{sent.run}]  to {sent.recipient}: {sent.subject}")
    path = directory / "index.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _index_html(emails: Sequence[SentEmail], directory: Path) -> Path:
    rows = "\n".join(
        f"<tr><td>{sent.number}</td><td>{html.escape(sent.run)}</td><td>{html.escape(sent.recipient)}</td>"
        f'<td>{html.escape(sent.subject)}</td><td><a href="{sent.stem}.html">html</a> '
        f'<a href="{sent.stem}.txt">text</a></td></tr>'
        for sent in emails
    )
    page = (
        '<!doctype html>\n<html><head><meta charset="utf-8"><title>Emails sent by make demo</title></head><body>\n'
        f"<h1>{len(emails)} emails sent by <code>make demo</code></h1>\n"
        "<table border=1 cellpadding=4><tr><th>#</th><th>run</th><th>to</th><th>subject</th><th>open</th></tr>\n"
        f"{rows}\n</table>\n</body></html>\n"
    )
    path = directory / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
