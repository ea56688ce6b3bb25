"""Render every email template with sample data into preview/, for a person to open.

    make preview            # or: .venv/bin/python scripts/preview_emails.py [--out preview]

The samples are meant to break things: tags, reasons and account names
carrying HTML and script, a user name using every punctuation mark IAM allows
in one (IAM refuses markup in user names, and so does the product's naming),
a 64-character user name, Unicode (accents,
CJK, emoji, a right-to-left mark), an owner tag that is not an address, and
lists longer than the run report shows. Each email is rendered twice, for a
real run and for a dry run (marked as a preview). Open preview/index.html.
"""

from __future__ import annotations

import argparse
import html
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "keyrotation"), str(ROOT)]

from keyrotation import clock, naming  # noqa: E402
from keyrotation.adoption import hint  # noqa: E402
from keyrotation.events import Account, Run  # noqa: E402
from keyrotation.ledger import ActionStatus, RecordKind  # noqa: E402
from keyrotation.ledger_records import run_records  # noqa: E402
from keyrotation.model import AccessKey, KeyStatus  # noqa: E402
from keyrotation.notifications import (  # noqa: E402
    NotifySettings,
    RenderedEmail,
    Renderer,
    TemplateFallback,
    build_digests,
    build_run_report,
)
from localaws.defaults import function_environment  # noqa: E402

NOW = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)
ACCOUNT = Account(
    account_id="111122223333",
    name='Produção <img src=x onerror="alert(1)"> 本番 🚀',
    email="aws-prod@example.com",
)
GUIDE = NotifySettings.from_env(
    {**function_environment("NotifyFunction"), "AWS_REGION": "eu-west-1", "SECURITY_TEAM_EMAIL": "security@example.com"}
).guide
HOSTILE = "<script>alert('pwned')</script>"
PUNCTUATED_USER = "bob+ci=ops,eu.west@team_a-b"  # every character IAM allows beyond letters and digits
LONG_USER = "svc-" + "x" * 56 + "-end"  # 64 characters, the IAM maximum
OWNER = "team-données@bücher.example"


def _iso(days: float) -> str:
    return clock.to_iso(NOW + timedelta(days=days))


def _arn(user: str) -> str:
    name = naming.secret_name(ACCOUNT.account_id, user)
    return f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT.account_id}:secret:{name}-Ab12Cd"


def _adoption(*keys: tuple[str, str, float | None]) -> dict[str, object]:
    """An item's ``adoption`` field as the audit writes it: (key id, adoption, last used days from NOW)."""
    return {
        "deliveredAt": _iso(-8),
        "keys": [
            {"keyId": key_id, "adoption": state, "lastUsed": None if days is None else _iso(days)}
            for key_id, state, days in keys
        ],
    }


def _used(service: str | None, region: str | None, days_ago: float | None) -> AccessKey:
    """An Active 85-day-old key last used ``days_ago`` (None: never) with ``service`` in ``region``."""
    last = None if days_ago is None else NOW - timedelta(days=days_ago)
    return AccessKey("AKIA", KeyStatus.ACTIVE, NOW - timedelta(days=85), last, service, region)


def ledger_items(dry_run: bool) -> list[dict[str, object]]:
    """One account's ledger items as audit and the key actions leave them."""
    done = (ActionStatus.PLANNED if dry_run else ActionStatus.DONE).value
    items: list[dict[str, object]] = []
    for user, owner in (("alice", "Alice@Example.com"), (LONG_USER, OWNER), (PUNCTUATED_USER, "bob@example.com")):
        rotated = {
            "newKeyId": f"AKIANEW{len(items):013d}",
            "secretName": naming.secret_name(ACCOUNT.account_id, user),
            "secretArn": _arn(user),
            "disableOn": _iso(15),
            "deleteOn": _iso(25),
        }
        items.append(
            {
                "kind": RecordKind.ACTION.value,
                "type": "rotate",
                "userName": user,
                "keyId": f"AKIAOLD{len(items):013d}",
                "reason": f"Key is 80 days old; rotation is due after 75 days. {HOSTILE}",
                "status": done,
                "ownerEmail": owner,
                **({} if dry_run else rotated),
            }
        )
    items += [
        {
            "kind": RecordKind.ACTION.value,
            "type": "disable",
            "userName": "alice",
            "keyId": "AKIADISABLED00000001",
            "status": done,
            "reason": "Its replacement AKIANEW0000000000000 was delivered 15 days ago.",
            "ownerEmail": "alice@example.com",
            "adoption": _adoption(("AKIADISABLED00000001", "still used", -1), ("AKIANEW0000000000000", "in use", -1)),
        },
        {
            "kind": RecordKind.ACTION.value,
            "type": "delete",
            "userName": "alice",
            "keyId": "AKIADELETED000000001",
            "status": done,
            "reason": "Inactive and 100 days old.",
            "ownerEmail": "alice@example.com",
        },
        {
            "kind": RecordKind.ACTION.value,
            "type": "rotate",
            "userName": "carol",
            "keyId": "AKIAFAILED0000000001",
            "status": ActionStatus.FAILED.value,
            "reason": "due",
            "error": "KeyRotation.NoFreeKeySlot",
            "cause": "two keys",
            "ownerEmail": "carol@example.com",
        },
        {
            "kind": RecordKind.NOTICE.value,
            "type": "disable-soon",
            "userName": "alice",
            "keyId": "AKIASOON000000000001",
            "detail": "Key AKIASOON000000000001 of user alice will be disabled by 2026-01-20. "
            "Ünïcödé ✓ and \u200fRTL\u200f.",
            "due": _iso(5),
            "ownerEmail": "alice@example.com",
            "lastUsed": (NOW - timedelta(days=2)).isoformat(),
            "lastUsedService": "s3",
            "lastUsedRegion": "eu-west-1",
            "keyCreated": (NOW - timedelta(days=85)).isoformat(),
            # Still used after its replacement was delivered: told first, with the helper's setup.
            "adoption": _adoption(
                ("AKIASOON000000000001", "still used", -2), ("AKIANEW0000000000000", "not yet", None)
            ),
            "hints": [{"keyId": "AKIASOON000000000001", "hint": hint(_used("s3", "eu-west-1", 2), NOW)}],
        },
        {
            "kind": RecordKind.NOTICE.value,
            "type": "disable-soon",
            "userName": LONG_USER,
            "keyId": "AKIANEVERUSED0000001",
            "detail": f"Never used. {HOSTILE}",
            "due": _iso(6),
            "ownerEmail": OWNER,
            "lastUsedService": "N/A",
            "lastUsedRegion": "N/A",
            "keyCreated": (NOW - timedelta(days=84)).isoformat(),
            # The user switched: the new key is in use, the old one is not.
            "adoption": _adoption(
                ("AKIANEVERUSED0000001", "not used since", None), ("AKIANEW0000000000001", "in use", -1)
            ),
            "hints": [{"keyId": "AKIANEVERUSED0000001", "hint": hint(_used(None, None, None), NOW)}],
        },
        {
            "kind": RecordKind.NOTICE.value,
            "type": "blocked",
            "userName": "dave",
            "keyId": "AKIABLOCKED000000001",
            "detail": "Key AKIABLOCKED000000001 is 80 days old, but the user already has two keys: the older key "
            "AKIAOTHER is Inactive and waits for its deletion date. To rotate sooner, delete key AKIAOTHER.",
            "due": _iso(10),
            "ownerEmail": '"><script>alert(1)</script>',
        },
        {
            "kind": RecordKind.NOTICE.value,
            "type": "reenabled",
            "userName": "alice",
            "keyId": "AKIAREENABLED0000001",
            "detail": f"Key AKIAREENABLED0000001, disabled on 2026-01-13, is Active again. {HOSTILE}",
            "due": _iso(10),
            "ownerEmail": "alice@example.com",
        },
        {
            "kind": RecordKind.NOTICE.value,
            "type": "reenabled",
            "userName": LONG_USER,
            "keyId": "AKIAREENABLED0000002",
            "detail": "Re-enabled a second time: not honoured.",
            "ownerEmail": OWNER,
        },
        {
            "kind": RecordKind.NOTICE.value,
            "type": "exemption-expiring",
            "userName": "erin",
            "detail": f"Ends after 2026-01-20. {HOSTILE}",
            "due": _iso(6),
            "ownerEmail": "erin@example.com",
        },
        {"kind": RecordKind.NOTICE.value, "type": "exempt", "userName": "frank", "detail": "In the exemption group."},
        {
            "kind": RecordKind.NOTICE.value,
            "type": "deferred",
            "userName": "gina",
            "keyId": "AKIADEFERRED00000001",
            "detail": "Later.",
        },
    ]
    return items


def run_items(dry_run: bool) -> Iterator[dict[str, object]]:
    """The whole run's ledger items for the report: many accounts, long lists."""
    for number in range(205):
        account_id = f"{444455556666 + number:012d}"
        yield {
            "kind": RecordKind.NOTICE.value,
            "type": "deferred",
            "accountId": account_id,
            "userName": f"user-{number}",
            "keyId": f"AKIADEFER{number:011d}",
            "detail": f"Waits for a later run. {HOSTILE}",
        }
    yield {
        "kind": RecordKind.NOTICE.value,
        "type": "reenabled",
        "accountId": ACCOUNT.account_id,
        "userName": "alice",
        "keyId": "AKIAREENABLED0000001",
        "detail": f"Active again after this product disabled it. {HOSTILE}",
        "due": _iso(10),
    }
    yield {
        "kind": RecordKind.NOTICE.value,
        "type": "reenabled",
        "accountId": ACCOUNT.account_id,
        "userName": LONG_USER,
        "keyId": "AKIAREENABLED0000002",
        "detail": "Re-enabled a second time: not honoured.",
    }
    yield {
        "kind": RecordKind.NOTICE.value,
        "type": "exempt",
        "accountId": ACCOUNT.account_id,
        "userName": LONG_USER,
        "detail": f"Tag key-rotation:exempt = 2026-06-30. {HOSTILE}",
        "due": "2026-06-30T23:59:59Z",
    }
    yield {
        "kind": RecordKind.NOTICE.value,
        "type": "exempt",
        "accountId": ACCOUNT.account_id,
        "userName": "frank",
        "detail": "Member of IAMKeyRotationExemptionGroup.",
    }
    yield {
        "kind": RecordKind.NOTICE.value,
        "type": "invalid-tag",
        "accountId": ACCOUNT.account_id,
        "userName": "harry",
        "detail": "For user harry, tag key-rotation:exempt has the value 'someday' <b>, "
        "which is neither true nor a date.",
    }
    status = "preview" if dry_run else "sent"
    yield {
        "kind": RecordKind.EMAIL.value,
        "accountId": ACCOUNT.account_id,
        "recipient": "alice@example.com",
        "status": status,
        "users": ["alice"],
    }
    yield {
        "kind": RecordKind.EMAIL.value,
        "accountId": ACCOUNT.account_id,
        "recipient": "ops@example.com",
        "status": "failed",
        "errorCode": "MessageRejected",
        "error": "Email address is not verified. <script>x</script>",
        "users": ["bob", LONG_USER],
    }
    yield {
        "kind": RecordKind.EMAIL.value,
        "accountId": ACCOUNT.account_id,
        "recipient": '"><script>alert(1)</script>',
        "status": "invalid-address",
        "error": "tag 'email' holds a value that is not an address",
        "users": ["dave"],
    }
    yield {
        "kind": RecordKind.EMAIL.value,
        "accountId": ACCOUNT.account_id,
        "recipient": "carol@example.com",
        "status": status,
        "users": ["carol"],
        "templateFallbacks": [
            {
                "template": "digest.html.j2",
                "reason": "syntax error in s3://templates-bucket/email-templates/digest.html.j2, line 3: "
                "unexpected '}'",
            }
        ],
    }


def summary() -> dict[str, object]:
    return {
        "runId": "2026-01-15T06-00-00Z",
        "accounts": {"total": 42, "succeeded": 40, "failed": 2},
        "keys": {"rotated": 17, "disabled": 9, "deleted": 4, "warned": 6},
        "failedAccounts": [
            {
                "accountId": "777788889999",
                "error": "KeyRotation.MemberRoleUnavailable",
                "cause": "cannot assume arn:aws:iam::777788889999:role/IAMKeyRotationMemberRole (AccessDenied): "
                "deploy the member-account role there or exclude the account",
            },
            {
                "accountId": "999900001111",
                "error": "KeyRotation.ActionsFailed",
                "cause": f"key actions failed {HOSTILE}",
            },
        ],
        "notices": {
            "disable-soon": 6,
            "blocked": 1,
            "exempt": 2,
            "exemption-expiring": 1,
            "invalid-tag": 1,
            "deferred": 205,
        },
    }


def render_all(out: Path) -> list[Path]:
    renderer = Renderer(ROOT / "templates")
    written: list[Path] = []
    for dry_run in (False, True):
        variant = "preview" if dry_run else "real"
        run = Run(run_id="2026-01-15T06-00-00Z", dry_run=dry_run)
        plan = build_digests(run_records(ledger_items(dry_run)), ACCOUNT, run, GUIDE, today=NOW.date())
        for number, digest in enumerate(plan.digests, start=1):
            written += _write(out, f"digest-{variant}-{number}", renderer.render_digest(digest, GUIDE))
        report = build_run_report(
            run,
            summary(),
            {"accounts": ["777788889999", "999900001111"]},
            run_records(run_items(dry_run)),
            started_at=clock.to_iso(NOW),
        )
        report = report.with_fallbacks(
            [TemplateFallback("layout.html.j2", "s3://templates-bucket/email-templates/layout.html.j2: no such object")]
        )
        written += _write(out, f"run_report-{variant}", renderer.render_run_report(report))
    written.append(_index(out, written))
    return written


def _write(out: Path, stem: str, email: RenderedEmail) -> list[Path]:
    html_path, text_path = out / f"{stem}.html", out / f"{stem}.txt"
    html_path.write_text(email.html, encoding="utf-8")
    text_path.write_text(f"Subject: {email.subject}\n\n{email.text}", encoding="utf-8")
    return [html_path, text_path]


def _index(out: Path, files: list[Path]) -> Path:
    links = "\n".join(f'<li><a href="{html.escape(path.name)}">{html.escape(path.name)}</a></li>' for path in files)
    index = out / "index.html"
    index.write_text(
        f"<!DOCTYPE html><meta charset='utf-8'><title>Email previews</title><h1>Email previews</h1><ul>{links}</ul>",
        encoding="utf-8",
    )
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "preview", help="folder to write to (default: preview/)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in render_all(args.out):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
