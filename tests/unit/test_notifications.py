"""The emails' domain code, without AWS: who gets what, how it renders, how overrides fall back.

The packaged templates (``templates/``) are rendered for real; S3 is a small
stand-in that serves a dict of objects (moto's S3 is used by the handler tests).
"""

from __future__ import annotations

import doctest
import email
import importlib
import io
import json
import pkgutil
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import escape

from keyrotation import notifications
from keyrotation.errors import InvalidConfiguration, Throttled, TransientAwsError
from keyrotation.events import Account, Run, RunFailure
from keyrotation.ledger_records import run_records
from keyrotation.notifications import (
    Capped,
    Digest,
    NotifySettings,
    Outcome,
    OverrideLoader,
    RenderedEmail,
    Renderer,
    SendFailure,
    TemplateFallback,
    build_digests,
    build_run_report,
    classify,
    compose,
    normalize_address,
    read_secret_command,
)
from localaws.defaults import function_environment

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
ACCOUNT = Account("111122223333", "prod", "aws-prod@example.com")
GUIDE = NotifySettings.from_env(
    {**function_environment("NotifyFunction"), "AWS_REGION": "eu-west-1", "SECURITY_TEAM_EMAIL": "security@example.com"}
).guide
REAL = Run("run-1", dry_run=False)
DRY = Run("run-1", dry_run=True)
TODAY = date(2026, 1, 15)
HOSTILE = '<script>alert("x")</script>'
ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:Account_111122223333_User_alice_AccessKey-AbCdEf"


def rotate(
    user: str = "alice", status: str = "done", owner: str | None = "alice@example.com", **extra: Any
) -> dict[str, Any]:
    item = {
        "kind": "action",
        "type": "rotate",
        "userName": user,
        "keyId": f"AKIAOLD{user.upper()[:8]}",
        "reason": "Key is 80 days old.",
        "status": status,
        "ownerEmail": owner,
    }
    if status == "done":
        item.update(
            newKeyId=f"AKIANEW{user.upper()[:8]}",
            secretName=f"Account_111122223333_User_{user}_AccessKey",
            secretArn=ARN.replace("alice", user),
            disableOn="2026-01-30T06:00:00Z",
            deleteOn="2026-02-09T06:00:00Z",
        )
    return {**item, **extra}


def action(
    kind: str, user: str = "alice", status: str = "done", owner: str | None = "alice@example.com", **extra: Any
) -> dict[str, Any]:
    return {
        "kind": "action",
        "type": kind,
        "userName": user,
        "keyId": f"AKIA{kind.upper()}{user.upper()[:6]}",
        "reason": f"{kind} reason",
        "status": status,
        "ownerEmail": owner,
        **extra,
    }


def notice(kind: str, user: str = "alice", owner: str | None = "alice@example.com", **extra: Any) -> dict[str, Any]:
    item = {
        "kind": "notice",
        "type": kind,
        "userName": user,
        "keyId": f"AKIA{kind[:4].upper()}{user.upper()[:6]}",
        "detail": f"{kind} detail for {user}.",
        "due": "2026-01-20T06:00:00Z",
        "ownerEmail": owner,
    }
    return {**item, **extra}


def digests_of(items: list[dict[str, Any]], run: Run = REAL, account: Account = ACCOUNT) -> dict[str, Digest]:
    plan = build_digests(run_records(items), account, run, GUIDE, today=TODAY)
    return {digest.recipient: digest for digest in plan.digests}


class FakeS3:
    """Serves ``objects`` (key -> bytes) like S3 GetObject; records the keys asked for."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.requests: list[str] = []

    def get_object(self, Bucket: str, Key: str, ExpectedBucketOwner: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        assert ExpectedBucketOwner == "111122223333", "every read names the bucket's owner"
        self.requests.append(Key)
        if Key not in self.objects:
            raise ClientError(
                {"Error": {"Code": "NoSuchKey", "Message": "The specified key does not exist."}}, "GetObject"
            )
        return {"Body": io.BytesIO(self.objects[Key]), "ContentLength": len(self.objects[Key])}


PACKAGED = Renderer(TEMPLATES)


def renderer_with(overrides: dict[str, str | bytes]) -> tuple[Renderer, FakeS3]:
    s3 = FakeS3({f"tpl/{name}": body.encode() if isinstance(body, str) else body for name, body in overrides.items()})
    return Renderer(TEMPLATES, OverrideLoader(s3, "bucket", "tpl/", owner="111122223333")), s3


# --------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  Alice.Smith+keys@Example.COM ", "alice.smith+keys@example.com"),
        ("ops@bücher.example", "ops@xn--bcher-kva.example"),
        ("o'brien@sub.example.co.uk", "o'brien@sub.example.co.uk"),
    ],
)
def test_valid_addresses_are_normalized(raw: str, expected: str) -> None:
    assert normalize_address(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "alice",
        "alice@",
        "@example.com",
        "alice@localhost",
        "alice@example",
        "a b@example.com",
        "alice@example.com, eve@example.com",
        "Alice <alice@example.com>",
        "alice@example.com\r\nBcc: eve@example.com",
        "alice@@example.com",
        ".alice@example.com",
        "alice.@example.com",
        "al..ice@example.com",
        "alice@-example.com",
        "alice@example..com",
        "alice@1.2.3.4",
        "dönitz@example.com",
        '"><script>@example.com',
        "a" * 65 + "@example.com",
        "alice@" + "a" * 64 + ".com",
        "alice\n@example.com",
        "alice@example\n.com",
        "alice@example.com\n.evil",
        None,
        42,
    ],
)
def test_anything_but_one_plain_address_is_refused(raw: Any) -> None:
    assert normalize_address(raw) is None


ADDRESS_LIKE = st.tuples(st.text(max_size=20), st.text(max_size=20)).map("@".join)


@given(st.one_of(st.text(max_size=80), ADDRESS_LIKE, st.emails()))
def test_an_accepted_address_is_one_header_safe_ascii_address(raw: str) -> None:
    address = normalize_address(raw)
    if address is not None:
        assert address.isascii() and address == address.lower()
        assert address.count("@") == 1
        assert not re.search(r"[\s,;<>\"()\[\]\\]", address)


# --------------------------------------------------------------------------
# Who gets what
# --------------------------------------------------------------------------


def test_each_person_gets_one_digest_of_all_their_users_events() -> None:
    items = [
        rotate("alice", owner="Alice@Example.com"),
        action("disable", "alice"),
        action("delete", "alice"),
        notice("disable-soon", "alice"),
        rotate("bob", owner="alice@example.com"),  # alice also owns bob
        notice("blocked", "carol", owner="carol@example.com"),
        notice("exemption-expiring", "dave", owner=None, keyId=None),  # no tag: the account's email
    ]
    digests = digests_of(items)
    assert sorted(digests) == ["alice@example.com", "aws-prod@example.com", "carol@example.com"]
    alice = digests["alice@example.com"]
    assert [r.user_name for r in alice.rotated] == ["alice", "bob"]
    assert [e.key_id for e in alice.disabled] == ["AKIADISABLEALICE"]
    assert [e.key_id for e in alice.deleted] == ["AKIADELETEALICE"]
    assert [e.key_id for e in alice.disable_soon] == ["AKIADISAALICE"]
    assert alice.user_names == ["alice", "bob"]
    assert [e.user_name for e in digests["carol@example.com"].blocked] == ["carol"]
    assert [e.user_name for e in digests["aws-prod@example.com"].exemption_expiring] == ["dave"]


def test_a_re_enabled_key_is_news_for_its_owner_honoured_or_not() -> None:
    honoured = notice("reenabled", due="2026-01-25T00:00:00Z", detail="Active again; honoured.")
    refused = notice("reenabled", "bob", owner="alice@example.com", due=None, detail="Again: not honoured.")
    digest = digests_of([honoured, refused])["alice@example.com"]
    assert [(e.user_name, e.key_id, e.honoured_until) for e in digest.reenabled] == [
        ("alice", "AKIAREENALICE", date(2026, 1, 25)),
        ("bob", "AKIAREENBOB", None),
    ]
    assert digest.counts["reenabled"] == 2 and digest.warned_marks() == {}
    rendered = PACKAGED.render_digest(digest, GUIDE)
    for body in (rendered.html, rendered.text):
        assert "AKIAREENALICE" in body and "stays Active until 2026-01-25 (Sunday)" in body
        assert "Active again; honoured." in body
        assert "AKIAREENBOB" in body and "re-enabled a second time" in body and "Again: not honoured." in body


def test_a_rotation_carries_the_secret_the_read_command_and_both_dates() -> None:
    rotation = digests_of([rotate()])["alice@example.com"].rotated[0]
    assert rotation.old_key_id == "AKIAOLDALICE"
    assert rotation.new_key_id == "AKIANEWALICE"
    assert rotation.secret_name == "Account_111122223333_User_alice_AccessKey"
    assert rotation.secret_arn == ARN
    assert rotation.read_command == (
        f"aws secretsmanager get-secret-value --secret-id {ARN} --region eu-west-1 --query SecretString --output text"
    )
    assert (rotation.disable_on, rotation.delete_on) == (date(2026, 1, 30), date(2026, 2, 9))


def test_the_read_command_uses_the_region_of_the_secret() -> None:
    arn = ARN.replace("eu-west-1", "ap-southeast-2")
    rotation = digests_of([rotate(secretArn=arn)])["alice@example.com"].rotated[0]
    assert "--region ap-southeast-2" in rotation.read_command


def test_a_warning_carries_the_keys_last_use() -> None:
    item = notice(
        "disable-soon",
        lastUsed="2026-01-13T10:05:00+00:00",
        lastUsedService="s3",
        lastUsedRegion="eu-west-1",
        keyCreated="2025-10-22T00:00:00+00:00",
    )
    soon = digests_of([item])["alice@example.com"].disable_soon[0]
    assert soon.disable_on == date(2026, 1, 20)
    assert (soon.last_used, soon.last_used_service, soon.last_used_region) == (
        datetime(2026, 1, 13, 10, 5, tzinfo=UTC),
        "s3",
        "eu-west-1",
    )
    assert soon.key_created == date(2025, 10, 22)
    assert soon.secret_name == "Account_111122223333_User_alice_AccessKey"


def test_iam_not_applicable_usage_reads_as_not_recorded() -> None:
    soon = digests_of([notice("disable-soon", lastUsedService="N/A", lastUsedRegion="N/A")])["alice@example.com"]
    assert (soon.disable_soon[0].last_used, soon.disable_soon[0].last_used_service) == (None, None)


@pytest.mark.parametrize("status", ["planned", "created", "skipped", "failed", "discarded"])
def test_a_real_run_tells_only_what_was_done(status: str) -> None:
    assert digests_of([rotate(status=status), action("disable", status=status), action("delete", status=status)]) == {}


def test_a_dry_run_previews_the_planned_actions() -> None:
    items = [
        rotate(status="planned"),
        action("disable", status="planned"),
        action("delete", status="planned"),
        rotate("bob", status="done"),
    ]  # not possible in a dry run; never shown as a preview
    digest = digests_of(items, run=DRY)["alice@example.com"]
    assert digest.preview
    rotation = digest.rotated[0]
    assert (rotation.user_name, rotation.new_key_id, rotation.secret_arn) == ("alice", None, None)
    assert "--secret-id Account_111122223333_User_alice_AccessKey " in rotation.read_command
    assert rotation.disable_on == TODAY + timedelta(days=GUIDE.disable_grace_days)
    assert rotation.delete_on == TODAY + timedelta(days=GUIDE.delete_grace_days)
    assert len(digest.disabled) == len(digest.deleted) == 1


@pytest.mark.parametrize("kind", ["exempt", "deferred", "invalid-tag"])
def test_the_security_teams_notices_are_not_sent_to_people(kind: str) -> None:
    assert digests_of([notice(kind)]) == {}


def test_an_invalid_owner_tag_is_reported_and_its_events_go_to_the_account() -> None:
    plan = build_digests(run_records([rotate(owner=f"alice {HOSTILE}")]), ACCOUNT, REAL, GUIDE, today=TODAY)
    (digest,) = plan.digests
    assert digest.recipient == "aws-prod@example.com"
    assert [(tag.user_name, tag.value) for tag in digest.invalid_owner_tags] == [("alice", f"alice {HOSTILE}")]
    (problem,) = plan.unreachable
    assert (problem.address, problem.users) == (f"alice {HOSTILE}", ("alice",))
    assert "not a valid email address" in problem.reason


def test_an_owner_tag_outside_the_allowed_domains_is_not_mailed_and_the_account_is_told() -> None:
    guide = replace(GUIDE, allowed_domains=("example.com",))
    items = [
        rotate("alice", owner="alice@example.com"),
        rotate("bob", owner="bob@mail.example.com"),  # a subdomain is in
        rotate("eve", owner="eve@example.com.attacker.test"),
        rotate("mallory", owner="Mallory@Elsewhere.test"),
    ]
    plan = build_digests(run_records(items), ACCOUNT, REAL, guide, today=TODAY)
    recipients = {digest.recipient: digest for digest in plan.digests}
    assert set(recipients) == {"alice@example.com", "bob@mail.example.com", "aws-prod@example.com"}
    to_account = recipients["aws-prod@example.com"]
    assert [event.user_name for event in to_account.rotated] == ["eve", "mallory"]
    assert [(tag.user_name, tag.outside_domains) for tag in to_account.invalid_owner_tags] == [
        ("eve", True),
        ("mallory", True),
    ]
    assert {problem.address for problem in plan.unreachable} == {
        "eve@example.com.attacker.test",
        "Mallory@Elsewhere.test",
    }
    assert all("outside AllowedEmailDomains (example.com)" in problem.reason for problem in plan.unreachable)
    rendered = PACKAGED.render_digest(to_account, guide)
    assert "outside the allowed domains" in rendered.text and "outside the allowed domains" in rendered.html


def test_the_account_email_is_mailed_whatever_its_domain() -> None:
    guide = replace(GUIDE, allowed_domains=("corp.example",))
    (digest,) = build_digests(run_records([rotate(owner=None)]), ACCOUNT, REAL, guide, today=TODAY).digests
    assert digest.recipient == "aws-prod@example.com"


@pytest.mark.parametrize(
    ("value", "domains"), [("", ()), ("Example.COM,@corp.example", ("example.com", "corp.example"))]
)
def test_allowed_domains_from_the_environment(value: str, domains: tuple[str, ...]) -> None:
    env = {**function_environment("NotifyFunction"), "AWS_REGION": "eu-west-1", "ALLOWED_EMAIL_DOMAINS": value}
    assert NotifySettings.from_env(env).guide.allowed_domains == domains
    with pytest.raises(InvalidConfiguration, match="ALLOWED_EMAIL_DOMAINS"):
        NotifySettings.from_env({**env, "ALLOWED_EMAIL_DOMAINS": "example.com,not a domain"})


def test_without_any_valid_address_nothing_is_sent_and_it_is_reported() -> None:
    account = Account("111122223333", "prod", "not-an-address")
    plan = build_digests(run_records([rotate(owner=None)]), account, REAL, GUIDE, today=TODAY)
    assert plan.digests == ()
    assert [(p.address, p.users) for p in plan.unreachable] == [("not-an-address", ("alice",))]


def test_warnings_are_marked_per_user_and_key() -> None:
    items = [notice("disable-soon"), notice("exemption-expiring", keyId=None), notice("blocked")]
    digest = digests_of(items)["alice@example.com"]
    assert digest.warned_marks() == {"alice": [("AKIADISAALICE", "disable-soon"), ("", "exemption-expiring")]}


# --------------------------------------------------------------------------
# Rendering the packaged templates
# --------------------------------------------------------------------------


def full_digest(run: Run = REAL, account: Account = ACCOUNT) -> Digest:
    items = [
        rotate(),
        action("disable"),
        action("delete"),
        notice("disable-soon", lastUsed="2026-01-13T10:05:00+00:00", lastUsedService="s3", lastUsedRegion="eu-west-1"),
        notice("blocked", detail="The user already has two keys. To rotate sooner, delete key AKIAOTHER."),
        notice("exemption-expiring", keyId=None, due="2026-01-21T00:00:00Z"),
    ]
    if run.dry_run:
        items = [{**item, "status": "planned"} if item["kind"] == "action" else item for item in items]
    return digests_of(items, run=run, account=account)["alice@example.com"]


@pytest.mark.parametrize("run", [REAL, DRY], ids=["real", "dry-run"])
def test_the_digest_tells_every_event_in_html_and_text(run: Run) -> None:
    rendered = PACKAGED.render_digest(full_digest(run), GUIDE)
    for body in (rendered.html, rendered.text):
        for expected in (
            "prod",
            "111122223333",
            "AKIAOLDALICE",
            "Account_111122223333_User_alice_AccessKey",
            "aws secretsmanager get-secret-value --secret-id",
            "--query SecretString --output text",
            "AKIADISABLEALICE",
            "AKIADELETEALICE",
            "AKIADISAALICE",
            "2026-01-13 10:05 UTC",
            "s3",
            "eu-west-1",
            "2026-01-20 (Tuesday)",
            "To rotate sooner, delete key AKIAOTHER.",
            "What you can do",
            "key-rotation:exempt",
            "IAMKeyRotationExemptionGroup",
            "2026-01-21 (Wednesday)",
        ):
            assert expected in body, expected
        if run.dry_run:
            assert "PREVIEW" in body and "would be" in body
            assert ARN not in body  # no secret exists yet
        else:
            assert "PREVIEW" not in body
            assert ARN in body and "AKIANEWALICE" in body
            assert "2026-01-30 (Friday)" in body and "2026-02-09 (Monday)" in body
    assert rendered.subject.startswith("[PREVIEW] ") == run.dry_run
    assert rendered.fallbacks == ()


def test_hostile_input_is_escaped_in_html_and_kept_verbatim_in_text() -> None:
    account = Account("111122223333", f"prod {HOSTILE}", "aws-prod@example.com")
    items = [
        rotate("alice", reason=f"reason {HOSTILE}"),
        notice("blocked", "x" * 64, detail=f"detail <img src=x onerror=alert(1)> & {HOSTILE}"),
        rotate("bob", owner='"><a href="javascript:alert(1)">tag</a>'),
    ]
    renderer = Renderer(TEMPLATES)
    for digest in build_digests(run_records(items), account, REAL, GUIDE, today=TODAY).digests:
        rendered = renderer.render_digest(digest, GUIDE)
        assert (
            "<script>" not in rendered.html
            and "<img" not in rendered.html
            and '<a href="javascript' not in rendered.html
        )
        assert str(escape(HOSTILE)) in rendered.html
        assert f"prod {HOSTILE}" in rendered.text
    bob = renderer.render_digest(build_digests(run_records(items), account, REAL, GUIDE, today=TODAY).digests[1], GUIDE)
    assert str(escape('"><a href="javascript:alert(1)">tag</a>')) in bob.html


@given(st.text(min_size=1, max_size=60))
def test_any_text_from_the_ledger_reaches_the_html_escaped(text: str) -> None:
    digest = digests_of([notice("blocked", detail=f"[{text}]")])["alice@example.com"]
    rendered = PACKAGED.render_digest(digest, GUIDE)
    assert str(escape(f"[{text}]")) in rendered.html
    assert f"[{text}]" in rendered.text


def test_a_64_character_user_name_and_unicode_render_whole() -> None:
    long_name = "svc-" + "x" * 56 + "-end"
    account = Account("111122223333", "Produção 本番 🚀", "aws-prod@example.com")
    digest = digests_of([rotate(long_name, detail="x")], account=account)["alice@example.com"]
    rendered = PACKAGED.render_digest(digest, GUIDE)
    for body in (rendered.html, rendered.text, rendered.subject):
        assert "Produção 本番 🚀" in body
    assert long_name in rendered.html and long_name in rendered.text


def test_every_template_renders_without_the_optional_fields() -> None:
    bare = [
        {"kind": "action", "type": "rotate", "userName": "u", "keyId": "AKIA1", "status": "done"},
        {"kind": "notice", "type": "disable-soon", "userName": "u"},
        {"kind": "notice", "type": "blocked", "userName": "u"},
        {"kind": "notice", "type": "exemption-expiring", "userName": "u"},
    ]
    digest = digests_of(bare)["aws-prod@example.com"]
    rendered = PACKAGED.render_digest(digest, GUIDE)
    assert "unknown" in rendered.text
    report = build_run_report(REAL, {}, None, [])
    assert "All 0 accounts succeeded" in PACKAGED.render_run_report(report).text


# --------------------------------------------------------------------------
# Overrides from S3
# --------------------------------------------------------------------------


def test_an_override_replaces_the_packaged_template() -> None:
    renderer, _ = renderer_with(
        {
            "digest.html.j2": "{% extends 'layout.html.j2' %}"
            "{% block content %}<p>OVERRIDE {{ digest.recipient }}</p>{% endblock %}",
            "layout.txt.j2": "CUSTOM LAYOUT\n{% block content %}{% endblock %}",
        }
    )
    rendered = renderer.render_digest(full_digest(), GUIDE)
    assert "<p>OVERRIDE alice@example.com</p>" in rendered.html
    assert "PREVIEW" not in rendered.html  # the packaged layout, which the override extends
    assert rendered.text.startswith("CUSTOM LAYOUT\n") and "AKIAOLDALICE" in rendered.text
    assert {f.template for f in rendered.fallbacks} == {"digest.txt.j2", "layout.html.j2"}
    assert all("no such object" in f.reason for f in rendered.fallbacks)


def test_overrides_are_autoescaped_too() -> None:
    renderer, _ = renderer_with({"digest.html.j2": "<p>{{ digest.blocked[0].why }}</p>"})
    digest = digests_of([notice("blocked", detail=HOSTILE)])["alice@example.com"]
    assert renderer.render_digest(digest, GUIDE).html == f"<p>{escape(HOSTILE)}</p>"


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ("{% block content %}{{ digest.recipient }", "syntax error in s3://bucket/tpl/digest.html.j2, line 1"),
        ("{{ digest.no_such_field }}", "UndefinedError"),
        ("{{ no_such_variable }}", "UndefinedError"),
        ("{{ 1 // 0 }}", "ZeroDivisionError"),
        ("{% include 'missing.j2' %}", "missing.j2"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "SecurityError"),  # the sandbox says no
        ("{% set seen = [] %}{{ seen.append(1) }}", "SecurityError"),  # immutable sandbox
    ],
)
def test_a_broken_override_falls_back_to_the_packaged_template(override: str, reason: str) -> None:
    renderer, _ = renderer_with({"digest.html.j2": override})
    rendered = renderer.render_digest(full_digest(), GUIDE)
    packaged = PACKAGED.render_digest(full_digest(), GUIDE)
    assert rendered.html == packaged.html
    broken = [f for f in rendered.fallbacks if f.template == "digest.html.j2"]
    assert len(broken) == 1 and reason in broken[0].reason, broken


def test_an_override_that_is_not_utf8_falls_back() -> None:
    renderer, _ = renderer_with({"digest.txt.j2": b"\xff\xfe broken"})
    rendered = renderer.render_digest(full_digest(), GUIDE)
    assert TemplateFallback("digest.txt.j2", "s3://bucket/tpl/digest.txt.j2: not UTF-8 text") in rendered.fallbacks
    assert "AKIAOLDALICE" in rendered.text


def test_a_broken_override_layout_falls_back_for_its_children() -> None:
    renderer, _ = renderer_with({"layout.html.j2": "{% block content %}{% endblok %}"})
    rendered = renderer.render_digest(full_digest(), GUIDE)
    assert rendered.html == PACKAGED.render_digest(full_digest(), GUIDE).html
    assert any(f.template == "digest.html.j2" and "layout.html.j2" in f.reason for f in rendered.fallbacks)


def test_each_override_object_is_read_once_per_invocation() -> None:
    renderer, s3 = renderer_with({"digest.txt.j2": "TEXT {{ digest.recipient }}"})
    for _ in range(3):
        renderer.render_digest(full_digest(), GUIDE)
    assert sorted(s3.requests) == sorted(
        f"tpl/{kind}.{fmt}.j2"
        for kind in ("digest", "layout")
        for fmt in ("html", "txt")
        if (kind, fmt) != ("layout", "txt")
    )


def test_s3_access_denied_and_network_errors_fall_back() -> None:
    class DeniedS3:
        def get_object(self, **_: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject")

    class OfflineS3:
        def get_object(self, **_: Any) -> dict[str, Any]:
            raise EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")

    for s3, reason in ((DeniedS3(), "access denied"), (OfflineS3(), "S3 could not be reached")):
        rendered = Renderer(TEMPLATES, OverrideLoader(s3, "bucket", "tpl/", owner="111122223333")).render_digest(
            full_digest(), GUIDE
        )
        assert "AKIAOLDALICE" in rendered.html
        assert rendered.fallbacks and all(reason in f.reason for f in rendered.fallbacks)


# --------------------------------------------------------------------------
# The run report
# --------------------------------------------------------------------------

SUMMARY = {
    "runId": "run-1",
    "accounts": {"total": 5, "succeeded": 3, "failed": 2},
    "keys": {"rotated": 4, "disabled": 2, "deleted": 1, "warned": 3},
    "failedAccounts": [
        {
            "accountId": "444455556666",
            "error": "KeyRotation.MemberRoleUnavailable",
            "cause": f"cannot assume {HOSTILE}",
        },
        {
            "accountId": "777788889999",
            "error": "KeyRotation.ActionsFailed",
            "cause": json.dumps({"errorType": "KeyRotation.ActionsFailed", "errorMessage": "key actions failed"}),
        },
    ],
    "notices": {"deferred": 7, "exempt": 1},
}
REPLAY = {"accounts": ["444455556666", "777788889999"]}


def run_items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [{**notice("deferred", f"user{n}"), "accountId": "111122223333"} for n in range(7)]
    items += [
        {**notice("reenabled", "ivy", detail="Active again.", due="2026-01-25T00:00:00Z"), "accountId": "111122223333"},
        {**notice("reenabled", "jack", detail="Again.", due=None), "accountId": "111122223333"},
        {**notice("exempt", "frank", keyId=None, detail="In the exemption group."), "accountId": "111122223333"},
        {**notice("invalid-tag", "harry", keyId=None, detail="Tag value 'someday'."), "accountId": "111122223333"},
        {"kind": "email", "accountId": "111122223333", "recipient": "a@example.com", "status": "sent", "users": ["a"]},
        {
            "kind": "email",
            "accountId": "111122223333",
            "recipient": "b@example.com",
            "status": "failed",
            "errorCode": "MessageRejected",
            "error": "Email address is not verified.",
            "users": ["b"],
            "templateFallbacks": [{"template": "digest.html.j2", "reason": "syntax error"}],
        },
        {
            "kind": "email",
            "accountId": "111122223333",
            "recipient": "nope",
            "status": "invalid-address",
            "error": "not an address",
            "users": ["c"],
            "templateFallbacks": [{"template": "digest.html.j2", "reason": "syntax error"}],
        },
        {"kind": "action", "type": "rotate", "status": "done", "accountId": "111122223333"},
    ]
    return items


def test_the_run_report_lists_the_users_blocked_until_a_person_acts() -> None:
    """A blocked notice with no date (a key of unknown origin) never clears by itself: the security team hears."""
    waiting = {
        "kind": "notice",
        "type": "blocked",
        "accountId": "111122223333",
        "userName": "alice",
        "detail": "A rotation of user alice started at 2026-01-14 06:00:03 UTC (run r) and stopped before ...",
    }
    clears = {**waiting, "userName": "bob", "keyId": "AKIABOB", "detail": "the second slot", "due": "2026-02-01"}

    report = build_run_report(REAL, SUMMARY, REPLAY, run_records([waiting, clears]))

    assert [row.user_name for row in report.waiting_for_a_person.shown] == ["alice"]
    rendered = PACKAGED.render_run_report(report)
    for body in (rendered.html, rendered.text):
        assert "alice" in body and "2026-01-14 06:00:03 UTC" in body and "AKIABOB" not in body


def test_the_run_report_lists_counts_failures_replay_and_what_people_were_not_told() -> None:
    report = build_run_report(REAL, SUMMARY, REPLAY, run_records(run_items()), started_at="2026-01-15T06:00:00Z", limit=5)
    assert report.accounts == {"total": 5, "succeeded": 3, "failed": 2}
    assert report.keys == {"rotated": 4, "disabled": 2, "deleted": 1, "warned": 3, "overdue": 0}
    assert [(row.account_id, row.cause) for row in report.failed_accounts.shown] == [
        ("444455556666", f"cannot assume {HOSTILE}"),
        ("777788889999", "key actions failed"),  # the message of Lambda's error envelope
    ]
    assert json.loads(report.replay_input or "") == REPLAY
    assert (len(report.deferred.shown), report.deferred.more, report.deferred.total) == (5, 2, 7)
    assert [(row.user_name, row.due) for row in report.reenabled.shown] == [("ivy", date(2026, 1, 25)), ("jack", None)]
    assert [row.user_name for row in report.exempt.shown] == ["frank"]
    assert [row.user_name for row in report.invalid_tags.shown] == ["harry"]
    assert [(row.recipient, row.status) for row in report.notification_problems.shown] == [
        ("b@example.com", "failed"),
        ("nope", "invalid-address"),
    ]
    assert report.notification_problems.shown[0].error == "MessageRejected: Email address is not verified."
    assert report.emails["sent"] == 1 and report.emails["failed"] == 1
    assert [(f.template, f.emails) for f in report.template_fallbacks] == [("digest.html.j2", 2)]

    rendered = PACKAGED.render_run_report(report)
    for body in (rendered.html, rendered.text):
        for expected in (
            "2 of 5 accounts failed",
            "444455556666",
            "KeyRotation.MemberRoleUnavailable",
            "user0",
            "and 2 more",
            "frank",
            "harry",
            "ivy",
            "2026-01-25 (Sunday)",
            "jack",
            "not honoured",
            "b@example.com",
            "MessageRejected",
            "digest.html.j2",
            "syntax error",
        ):
            assert expected in body, expected
    assert json.dumps(REPLAY, indent=2) in rendered.text
    assert str(escape(json.dumps(REPLAY, indent=2))) in rendered.html
    assert "<script>" not in rendered.html and str(escape(HOSTILE)) in rendered.html
    assert rendered.subject == "2 of 5 accounts failed in IAM access key rotation run run-1"


def test_a_failed_replay_reports_its_failure_its_replayed_run_and_the_owners_not_told() -> None:
    """Each section stands on its own: a step's failure hides neither the replay line nor the untold owners."""
    replay = Run("run-2", dry_run=False, replay_of="run-1")
    failure = RunFailure("run-2", False, None, "Summarize", "ClientError", "injected ValidationException")
    disabled = {
        "kind": "action",
        "accountId": "111122223333",
        "type": "disable",
        "status": "done",
        "userName": "alice",
        "keyId": "AKIAOLDALICE",
        "ownerEmail": "alice@example.com",
        "ownerNotTold": ["run-0"],
    }

    report = build_run_report(replay, {"runId": "run-2"}, None, run_records([disabled]), failure=failure)

    assert report.replay_of == "run-1" and report.failure is not None
    assert [(row.user_name, row.key_id) for row in report.untold.shown] == [("alice", "AKIAOLDALICE")]
    rendered = PACKAGED.render_run_report(report)
    for body in (rendered.text, rendered.html):
        assert "a replay of run" in body and "run-1" in body
        assert "failed in its Summarize step" in body.replace("FAILED", "failed") and "incomplete" in body
        assert "the email of run run-0" in body


def test_a_dry_run_report_is_marked_as_a_preview() -> None:
    rendered = PACKAGED.render_run_report(build_run_report(DRY, SUMMARY, None, []))
    assert rendered.subject.startswith("[PREVIEW] ")
    assert "PREVIEW" in rendered.html and "PREVIEW" in rendered.text


def test_the_report_lists_its_own_template_fallbacks() -> None:
    renderer, _ = renderer_with({"run_report.txt.j2": "{{ report.nope }}"})
    rendered = renderer.render_run_report(build_run_report(REAL, SUMMARY, None, []))
    assert "run_report.txt.j2" in rendered.text and "UndefinedError" in rendered.text
    assert "run_report.txt.j2" in rendered.html


def test_a_replay_input_too_long_for_an_email_is_pointed_to() -> None:
    replay = {"accounts": [f"{n:012d}" for n in range(20_000)]}
    report = build_run_report(REAL, SUMMARY, replay, [])
    assert report.replay_input is None and report.replay_input_chars > 200_000
    assert "too long for this email" in PACKAGED.render_run_report(report).text


def test_capped_lists() -> None:
    assert Capped.of([], limit=3).total == 0 and not Capped.of([], limit=3)
    assert Capped.of("abcd", limit=3) == Capped(("a", "b", "c"), more=1)


# --------------------------------------------------------------------------
# Sending
# --------------------------------------------------------------------------


def client_error(code: str, message: str = "", status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "SendRawEmail"
    )


@pytest.mark.parametrize(
    ("error", "transient", "throttled"),
    [
        (client_error("Throttling", "Maximum sending rate exceeded."), True, True),
        (client_error("Throttling", "Daily message quota exceeded."), False, False),
        (client_error("ServiceUnavailable", status=503), True, False),
        (client_error("InternalFailure", status=500), True, False),
        (client_error("Whatever", status=502), True, False),
        (client_error("MessageRejected", "Email address is not verified."), False, False),
        (client_error("MailFromDomainNotVerified"), False, False),
        (client_error("AccountSendingPausedException"), False, False),
        (client_error("AccessDenied", status=403), False, False),
    ],
)
def test_ses_errors_are_classified(error: ClientError, transient: bool, throttled: bool) -> None:
    failure = classify(error)
    assert (failure.transient, failure.throttled) == (transient, throttled)


def test_a_message_has_both_versions_and_a_safe_subject() -> None:
    rendered = RenderedEmail(subject="Keys\r\nBcc: eve@example.com 本番", html="<p>héllo ✓</p>", text="héllo ✓\n")
    raw = compose("keys@example.com", "alice@example.com", rendered, reply_to="security@example.com")
    message = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == "Keys Bcc: eve@example.com 本番"
    assert message["Bcc"] is None
    assert message["To"] == "alice@example.com"
    assert message["Reply-To"] == "security@example.com"
    assert message["Auto-Submitted"] == "auto-generated"
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content() == "héllo ✓\r\n"  # SMTP line ends
    assert html.get_content().strip() == "<p>héllo ✓</p>"


def test_transient_failures_raise_the_names_the_state_machine_retries() -> None:
    Outcome(sent=2, failed=1).raise_if_retry_needed()  # permanent failures are recorded, not raised
    with pytest.raises(Throttled):
        Outcome(retry=[SendFailure("Throttling", "", transient=True, throttled=True)]).raise_if_retry_needed()
    with pytest.raises(TransientAwsError, match="1 email"):
        Outcome(retry=[SendFailure("ServiceUnavailable", "", transient=True)]).raise_if_retry_needed()


def test_the_read_command_never_holds_more_than_the_secret_id() -> None:
    command = read_secret_command("Account_1_User_a b_AccessKey", "eu-west-1")
    assert command == (
        "aws secretsmanager get-secret-value --secret-id 'Account_1_User_a b_AccessKey' "
        "--region eu-west-1 --query SecretString --output text"
    )


# --------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------


def test_settings_from_the_environment() -> None:
    settings = NotifySettings.from_env(
        {
            **function_environment("NotifyFunction"),
            "SENDER_EMAIL": "Keys@Example.com",
            "SECURITY_TEAM_EMAIL": "sec@example.com",
            "TEMPLATE_BUCKET": "b",
            "TEMPLATE_PREFIX": "email/",
            "TEMPLATE_BUCKET_OWNER": "111122223333",
            "AWS_REGION": "eu-west-1",
            "OWNER_EMAIL_TAG_KEY": "owner",
            "ROTATION_PERIOD_DAYS": "30",
            "INACTIVE_PERIOD_DAYS": "40",
            "DELETE_PERIOD_DAYS": "50",
        }
    )
    assert (settings.sender, settings.security_team, settings.template_bucket, settings.template_prefix) == (
        "Keys@Example.com",
        "sec@example.com",
        "b",
        "email/",
    )  # as configured: the IAM condition matches it exactly
    assert settings.template_bucket_owner == "111122223333"
    assert (settings.guide.owner_tag_key, settings.guide.disable_grace_days, settings.guide.delete_grace_days) == (
        "owner",
        10,
        20,
    )


@pytest.mark.parametrize("name", ["SENDER_EMAIL", "SECURITY_TEAM_EMAIL"])
def test_a_configured_address_must_be_an_address(name: str) -> None:
    with pytest.raises(InvalidConfiguration, match=name):
        NotifySettings.from_env(
            {**function_environment("NotifyFunction"), name: "not an address", "AWS_REGION": "eu-west-1"}
        )


# ==========================================================================
# The examples in the package's docstrings are true
# ==========================================================================


@pytest.mark.parametrize(
    "module_name",
    ["keyrotation.notifications"]
    + [f"keyrotation.notifications.{module.name}" for module in pkgutil.iter_modules(notifications.__path__)],
)
def test_docstring_examples(module_name: str) -> None:
    failures, _ = doctest.testmod(importlib.import_module(module_name), optionflags=doctest.ELLIPSIS)
    assert failures == 0


# ==========================================================================
# Adoption and hints (issue 11, items 3 and 4)
# ==========================================================================

DELIVERED = "2026-01-07T06:00:00+00:00"
STILL_USED_WARNING = notice(
    "disable-soon",
    keyId="AKIAOLDALICE",
    lastUsed="2026-01-14T09:30:00+00:00",
    lastUsedService="sts",
    lastUsedRegion="eu-west-1",
    adoption={
        "deliveredAt": DELIVERED,
        "keys": [
            {"keyId": "AKIAOLDALICE", "adoption": "still used", "lastUsed": "2026-01-14T09:30:00+00:00"},
            {"keyId": "AKIANEWALICE", "adoption": "not yet", "lastUsed": "2026-01-07T05:59:40+00:00"},
        ],
    },
    hints=[
        {"keyId": "AKIAOLDALICE", "hint": "last used with sts in eu-west-1: inside AWS use the workload's IAM role"}
    ],
)
SWITCHED_WARNING = notice(
    "disable-soon",
    "bob",
    owner="bob@example.com",
    keyId="AKIAOLDBOB",
    adoption={
        "deliveredAt": DELIVERED,
        "keys": [
            {"keyId": "AKIAOLDBOB", "adoption": "not used since", "lastUsed": "2026-01-06T10:00:00+00:00"},
            {"keyId": "AKIANEWBOB", "adoption": "in use", "lastUsed": "2026-01-14T08:00:00+00:00"},
        ],
    },
)
HELPER_LINE = "credential_process = keyrotation credentials --secret-id Account_111122223333_User_alice_AccessKey"


def test_a_warning_carries_whether_the_new_key_is_in_use_and_the_old_one_still_used() -> None:
    alice = digests_of([STILL_USED_WARNING])["alice@example.com"]
    (soon,) = alice.disable_soon
    assert soon.still_in_use and alice.still_in_use == (soon,)
    assert soon.adoption is not None and not soon.adoption.new_key_in_use
    assert soon.adoption.delivered_at == datetime(2026, 1, 7, 6, 0, tzinfo=UTC)
    assert soon.helper_line == HELPER_LINE
    assert soon.helper_seed.endswith("--region eu-west-1 credentials --seed --secret-id " + soon.secret_name)
    bob = digests_of([SWITCHED_WARNING])["bob@example.com"]
    assert bob.still_in_use == () and bob.disable_soon[0].adoption is not None
    assert bob.disable_soon[0].adoption.new_key_in_use


@pytest.mark.parametrize("run", [REAL, DRY], ids=["real", "dry-run"])
def test_an_old_key_still_in_use_is_told_first_with_the_helper_s_one_line_setup(run: Run) -> None:
    rotated = rotate("carol", status="planned" if run.dry_run else "done")
    digest = digests_of([rotated, STILL_USED_WARNING], run=run)["alice@example.com"]
    rendered = PACKAGED.render_digest(digest, GUIDE)
    text, html = rendered.text, rendered.html
    # At the top of the email, before the other sections; and at the top of the user's own entry.
    assert text.index("OLD KEYS STILL IN USE") < text.index(
        "KEYS THAT WOULD BE ROTATED" if run.dry_run else "NEW ACCESS"
    )
    entry = text.split("DISABLED SOON")[1].split("\n* ")[1]
    assert entry.startswith("!! STILL IN USE: key AKIAOLDALICE of user alice"), entry
    assert entry.index(HELPER_LINE) < entry.index("Last used:")
    assert "credentials --seed --secret-id Account_111122223333_User_alice_AccessKey" in entry
    assert (
        "Old key:      AKIAOLDALICE STILL USED after the new key was delivered, last used 2026-01-14 09:30 UTC" in entry
    )
    assert "New key:      AKIANEWALICE not in use yet" in entry
    assert html.index("Old keys still in use") < html.index("<h2>")
    entry_html = html.split("Still in use: key")[1]
    assert entry_html.index(HELPER_LINE) < entry_html.index("Last used") and "still used" in entry_html
    assert rendered.fallbacks == ()


def test_a_user_who_switched_reads_that_the_new_key_is_in_use_and_gets_no_warning_of_it() -> None:
    rendered = PACKAGED.render_digest(digests_of([SWITCHED_WARNING])["bob@example.com"], GUIDE)
    assert "New key:      AKIANEWBOB in use, last used 2026-01-14 08:00 UTC" in rendered.text
    assert "Old key:      AKIAOLDBOB not used since the new key was delivered" in rendered.text
    assert "<strong>in use</strong>, last used 2026-01-14 08:00 UTC" in rendered.html
    for body in (rendered.text, rendered.html):
        assert "STILL" not in body and "Still in use" not in body and "credential_process" not in body


def test_a_disable_and_a_re_enable_say_whether_the_new_key_was_taken_up() -> None:
    taken_up = SWITCHED_WARNING["adoption"]
    items = [action("disable", adoption=taken_up), notice("reenabled", adoption=taken_up), action("delete")]
    digest = digests_of(items)["alice@example.com"]
    assert digest.disabled[0].adoption == digest.reenabled[0].adoption is not None
    assert digest.deleted[0].adoption is None
    rendered = PACKAGED.render_digest(digest, GUIDE)
    assert rendered.text.count("New key:      AKIANEWBOB in use") == 2
    assert rendered.html.count("<strong>in use</strong>") == 2


def test_the_helper_setup_names_the_cli_s_own_command_and_options() -> None:
    from keyrotation_cli.main import cli

    soon = digests_of([STILL_USED_WARNING])["alice@example.com"].disable_soon[0]
    command = soon.helper_line.split(" = ", 1)[1].split()
    credentials = cli.commands[command[1]]
    options = {option for param in credentials.params for option in param.opts}
    assert command[0] == "keyrotation" and command[2] in options and command[3] == soon.secret_name
    seed = soon.helper_seed.split()
    global_options = {option for param in cli.params for option in param.opts}
    assert {"--profile", "--region"} <= global_options and {"--seed", "--secret-id"} <= options
    assert seed[seed.index("credentials") + 1 :] == ["--seed", "--secret-id", soon.secret_name]


def test_hints_ride_along_with_a_user_s_news_once_per_key_and_never_make_a_digest() -> None:
    hint = [{"keyId": "AKIAOLDALICE", "hint": "never used in 45 days (CIS 1.12): delete the key"}]
    assert digests_of([notice("exempt", hints=hint), notice("deferred", hints=hint)]) == {}
    digest = digests_of([rotate(hints=hint), action("delete", hints=hint), notice("blocked", "dan", hints="?")])
    alice = digest["alice@example.com"]
    assert [(h.user_name, h.key_id, h.text) for h in alice.hints] == [("alice", "AKIAOLDALICE", hint[0]["hint"])]
    assert digest["alice@example.com"].hints and not [d for d in digest.values() if d is not alice and d.hints]
    rendered = PACKAGED.render_digest(alice, GUIDE)
    for body in (rendered.text, rendered.html):
        assert body.count("never used in 45 days (CIS 1.12): delete the key") == 1
        assert "could go altogether" in body.lower()
    assert "could go altogether" not in PACKAGED.render_digest(full_digest(), GUIDE).text.lower()


@pytest.mark.parametrize("garbage", [None, "x", {"keys": "x"}, {"keys": [1, {"keyId": "A", "adoption": "?"}]}])
def test_an_unreadable_adoption_field_is_left_out(garbage: Any) -> None:
    digest = digests_of([notice("disable-soon", adoption=garbage)])["alice@example.com"]
    assert digest.disable_soon[0].adoption is None and digest.still_in_use == ()
    assert "New key:" not in PACKAGED.render_digest(digest, GUIDE).text
