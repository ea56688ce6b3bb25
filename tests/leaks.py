"""The leak check: no secret access key made during a test shows up anywhere it must not.

One check for every test that runs the product against the in-memory AWS (tests/statemachine/ and
tests/integration/ use it as an autouse fixture through their conftest.py). Every secret access key
moto's IAM creates during a test is remembered (the seeding's keys and every key the product creates,
including those deleted before the test ends). When the test ends, none of them may appear in:

- any execution, input, output, error or history event, of any state machine;
- anything logged or printed: every logging stream handler of the process is
  tapped (the Powertools Logger writes JSON to a stream of its own), ``capfd``
  is read, and so is every record ``caplog`` holds in each phase of the test,
  extra fields included (each function's execution environment has a ``logging``
  of its own, whose records the runtime passes on to the process's);
- any item of any DynamoDB table, in any account and region (the ledger);
- any email moto's SES recorded;
- any message in any SQS queue (where a test's EventBridge rule delivers the key events);
- any Lambda invocation's event, result or error;
- any object written to S3 in the deployment account.

Both halves of each secret are looked for, so a truncated or split value is
caught too. A finding names its source and the key id, never the secret. Every
remembered secret is a whole one (40 characters), and a test in which a function
succeeded must have captured log records (every handler logs its success): a
check that saw no logs would prove nothing about them.

A test that leaks on purpose (to prove the check works) calls
``leak_check.scan()`` and then ``leak_check.acknowledge(found)``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID

import keyrotation.observability  # noqa: F401 - create the Powertools Logger (and its stream) before tapping
from localaws import LocalAws

SECRET_LENGTH = 40  # an AWS secret access key
PHASES = ("setup", "call", "teardown")
_FORMATTER = logging.Formatter("%(levelname)s %(name)s:%(filename)s:%(lineno)d %(message)s")


@dataclass(frozen=True)
class Leak:
    source: str
    key_id: str

    def __str__(self) -> str:
        return f"the secret of key {self.key_id} appears in {self.source}"


class _Tap(io.TextIOBase):
    """A stream that copies everything written to it, then writes it on."""

    def __init__(self, original: Any, copy: io.StringIO) -> None:
        super().__init__()
        self.original, self.copy = original, copy

    def write(self, text: str) -> int:
        self.copy.write(text)
        try:
            return int(self.original.write(text) or len(text))
        except ValueError:  # a stream closed by an earlier test's capture: the copy is what matters here
            return len(text)

    def flush(self) -> None:
        with contextlib.suppress(ValueError):
            self.original.flush()


@dataclass
class LeakCheck:
    aws: LocalAws
    capfd: pytest.CaptureFixture[str]
    caplog: pytest.LogCaptureFixture
    secrets: dict[str, str] = field(default_factory=dict)  # secret -> key id; never printed
    logs: io.StringIO = field(default_factory=io.StringIO)
    acknowledged: set[Leak] = field(default_factory=set)
    records_seen: int = 0  # log records read from caplog, over every scan
    _taps: list[tuple[logging.StreamHandler[Any], Any]] = field(default_factory=list)
    _log_text: list[str] = field(default_factory=list)
    _records_read: list[logging.LogRecord] = field(default_factory=list)  # kept: their ids stay unique

    # -- what to look for --------------------------------------------------------------------------

    def remember(self, key_id: str, secret: str) -> None:
        self.secrets[secret] = key_id

    def _all_secrets(self) -> dict[str, str]:
        from moto.iam.models import iam_backends

        found = dict(self.secrets)
        for account_id in list(iam_backends):
            for key in list(iam_backends[account_id]["aws"].access_keys.values()):
                found[key.secret_access_key] = key.access_key_id
        return found

    # -- where to look ------------------------------------------------------------------------------

    def tap_logs(self) -> None:
        loggers = [logging.getLogger()] + [
            logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
        ]
        for logger in loggers:
            for handler in logger.handlers:
                # Plain stream handlers (the Powertools Logger's among them); pytest's own are read through caplog.
                if type(handler) is logging.StreamHandler and not isinstance(handler.stream, _Tap):
                    self._taps.append((handler, handler.stream))
                    handler.stream = _Tap(handler.stream, self.logs)

    def untap_logs(self) -> None:
        for handler, original in reversed(self._taps):
            handler.stream = original
        self._taps.clear()

    def _new_records(self) -> list[logging.LogRecord]:
        """The records caplog holds, of every phase of the test so far, that no scan has read yet.

        At the end of a test (the fixture's teardown) ``caplog.records`` holds the teardown's records only:
        the setup's and the call's are read by phase.
        """
        read = {id(record) for record in self._records_read}
        new = [
            record
            for phase in PHASES
            for record in self.caplog.get_records(phase)  # type: ignore[arg-type]
            if id(record) not in read
        ]
        self._records_read.extend(new)
        return new

    def _read_logs(self) -> str:
        """What was logged or printed since the last scan (consumed, so a scan sees each line once)."""
        captured = self.capfd.readouterr()
        # Every record as logged, extra fields included (each function's records reach caplog from its own logging).
        records = [
            json.dumps({**vars(record), "formatted": _FORMATTER.format(record)}, default=str)  # with any traceback
            for record in self._new_records()
        ]
        text = "\n".join([self.logs.getvalue(), captured.out, captured.err, *records])
        self.logs.seek(0)
        self.logs.truncate()
        self._log_text.append(text)
        self.records_seen += len(records)
        return text

    def sources(self, logs: str) -> Iterator[tuple[str, str]]:
        yield "log output", logs
        yield from self._executions()
        yield from self._tables()
        yield from self._emails()
        yield from self._queues()
        yield from self._invocations()
        yield from self._objects()

    def _executions(self) -> Iterator[tuple[str, str]]:
        sfn = self.aws.client("stepfunctions")
        for machines in sfn.get_paginator("list_state_machines").paginate():
            for machine in machines["stateMachines"]:
                for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine["stateMachineArn"]):
                    for execution in page["executions"]:
                        arn = execution["executionArn"]
                        described = sfn.describe_execution(executionArn=arn)
                        events = [
                            e
                            for p in sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
                            for e in p["events"]
                        ]
                        name = described.get("name") or execution.get("name") or arn.rsplit(":", 1)[-1]
                        where = f"execution {name} of {machine.get('name', machine['stateMachineArn'])}"
                        yield where, json.dumps([described, events], default=str)

    def _tables(self) -> Iterator[tuple[str, str]]:
        from moto.dynamodb.models import dynamodb_backends

        for account_id in list(dynamodb_backends):
            for region, backend in list(dynamodb_backends[account_id].items()):
                for name, table in list(backend.tables.items()):
                    items = [item.to_json() for item in table.all_items()]
                    yield f"DynamoDB table {name} of {account_id}/{region}", json.dumps(items, default=str)

    def _emails(self) -> Iterator[tuple[str, str]]:
        from moto.ses.models import ses_backends

        for account_id in list(ses_backends):
            for region, backend in list(ses_backends[account_id].items()):
                for n, message in enumerate(backend.sent_messages):
                    yield f"email {n} sent from {account_id}/{region}", json.dumps(vars(message), default=str)

    def _queues(self) -> Iterator[tuple[str, str]]:
        from moto.sqs.models import sqs_backends

        for account_id in list(sqs_backends):
            for region, backend in list(sqs_backends[account_id].items()):
                for name, queue in list(backend.queues.items()):
                    bodies = [message.body for message in [*queue._messages, *queue._pending_messages]]
                    yield f"SQS queue {name} of {account_id}/{region}", json.dumps(bodies)

    def _invocations(self) -> Iterator[tuple[str, str]]:
        for n, call in enumerate(self.aws.lambdas.invocations):
            text = json.dumps({"event": call.event, "result": call.result, "error": call.error}, default=str)
            yield f"invocation {n} of {call.logical_id}", text

    def _objects(self) -> Iterator[tuple[str, str]]:
        from moto.s3.models import s3_backends

        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for bucket in list(backend.buckets.values()):
            for key in list(bucket.keys.values()):
                value = getattr(key, "value", b"")
                yield (
                    f"s3://{bucket.name}/{key.name}",
                    value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value),
                )

    # -- the check ----------------------------------------------------------------------------------

    def scan(self) -> list[Leak]:
        """Every place a remembered secret (or either half of it) appears now; key ids only."""
        self.aws.faults.clear()  # the test is over, or wants to look: nothing may fail these reads
        needles = self._needles()
        found: list[Leak] = []
        for source, text in self.sources(self._read_logs()):
            for leak in self._find(needles, source, text):
                if leak not in found:
                    found.append(leak)
        return found

    def find_in(self, source: str, text: str) -> list[Leak]:
        """Every remembered secret (or half of one) in ``text``, e.g. a command's output; key ids only."""
        return self._find(self._needles(), source, text)

    def _needles(self) -> list[tuple[str, str]]:
        secrets = self._all_secrets()
        return [(part, key_id) for secret, key_id in secrets.items() for part in (secret[:20], secret[20:]) if part]

    @staticmethod
    def _find(needles: list[tuple[str, str]], source: str, text: str) -> list[Leak]:
        found: list[Leak] = []
        for part, key_id in needles:
            leak = Leak(source, key_id)
            if part in text and leak not in found:
                found.append(leak)
        return found

    def acknowledge(self, leaks: list[Leak]) -> None:
        self.acknowledged.update(leaks)

    @property
    def log_text(self) -> str:
        """Every log line and print seen so far (for tests that check the logs were captured at all)."""
        return "\n".join(self._log_text)


def _remember_every_key(check: LeakCheck, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.iam.models import AccessKey

    original = AccessKey.__init__

    def init(self: AccessKey, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        check.remember(self.access_key_id, self.secret_access_key)

    monkeypatch.setattr(AccessKey, "__init__", init)


@pytest.fixture(autouse=True)
def leak_check(
    aws: LocalAws, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LeakCheck]:
    """Fails the test if a secret access key created during it shows up anywhere it must not."""
    caplog.set_level(logging.INFO)
    check = LeakCheck(aws, capfd, caplog)
    _remember_every_key(check, monkeypatch)
    check.tap_logs()
    try:
        yield check
        leaks = [leak for leak in check.scan() if leak not in check.acknowledged]
    finally:
        check.untap_logs()
    if leaks:
        pytest.fail("secret access keys leaked:\n" + "\n".join(str(leak) for leak in leaks), pytrace=False)
    short = sorted(key_id for secret, key_id in check._all_secrets().items() if len(secret) != SECRET_LENGTH)
    assert not short, f"not whole secrets (the check would look for the wrong text): keys {short}"
    # Every handler logs its success: a function that ran (in an execution environment) and succeeded logged.
    if any(call.error is None and call.environment is not None for call in aws.lambdas.invocations):
        assert check.records_seen, "the functions' logs were not captured"
