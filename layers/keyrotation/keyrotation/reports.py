"""The run's files in the run bucket: every action and blocked user, as JSON and CSV, under ``reports/<runId>/``.

The run report email lists a bounded number of rows; these files list them all, for a spreadsheet or a
script. The builders are pure (rows from the run's ledger records, then the files' bytes); :func:`write`
puts one file. Every value is a name, an id, a date or a sentence the ledger holds: never a secret.

A user name may be hostile (IAM allows ``=+-@`` in names): a CSV cell that a spreadsheet would read as a
formula is written with a leading ``'`` (:func:`csv_cell`).

    >>> from keyrotation.ledger_records import run_records
    >>> items = [{"kind": "action", "accountId": "111122223333", "type": "rotate", "userName": "=HYPERLINK(1)",
    ...           "keyId": "AKIAOLD", "status": "done", "reason": "90 days old"}]
    >>> rows = action_rows(run_records(items), {"111122223333": "prod"})
    >>> rows[0]["accountName"], rows[0]["action"], rows[0]["result"]
    ('prod', 'rotate', 'done')
    >>> csv_text(rows, ACTION_COLUMNS).splitlines()[1]
    "111122223333,prod,'=HYPERLINK(1),AKIAOLD,rotate,done,90 days old,"
"""

from __future__ import annotations

import contextvars
import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from keyrotation.aws import error_code, translate_errors
from keyrotation.errors import InventoryUnreadable
from keyrotation.ledger_records import ActionRecord, NoticeRecord, RunRecord
from keyrotation.model import NoticeKind

#: Where a run's files are, under the run bucket.
REPORTS_PREFIX = "reports/"
#: The columns of ``actions.csv``, in order (``actions.json`` has the same fields).
ACTION_COLUMNS = ("accountId", "accountName", "userName", "keyId", "action", "result", "reason", "error")
#: How a blocked user is listed beside the actions: its ``action``.
BLOCKED = "blocked"
#: A cell starting with one of these is a formula to a spreadsheet (and tab/CR can start one too).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_MAX_TEXT = 2000
#: How many inventory fragments Summarize reads at once.
FRAGMENT_READERS = 16


def prefix(run_id: str) -> str:
    """The folder of a run's files.

    >>> prefix("run-1")
    'reports/run-1/'
    """
    return f"{REPORTS_PREFIX}{run_id}/"


def inventory_prefix(run_id: str) -> str:
    """The folder of the run's inventory fragments, one per account audited.

    >>> inventory_prefix("run-1")
    'reports/run-1/inventory/'
    """
    return f"{prefix(run_id)}inventory/"


def fragment(account_id: str, account_name: str, rows: Sequence[Mapping[str, Any]], totals: Mapping[str, int]) -> str:
    """One account's inventory fragment (JSON): its rows and their totals.

    >>> fragment("111122223333", "prod", [], {"keys": 0})
    '{"accountId": "111122223333", "accountName": "prod", "totals": {"keys": 0}, "rows": []}'
    """
    return json.dumps(
        {"accountId": account_id, "accountName": account_name, "totals": dict(totals), "rows": list(rows)}, default=str
    )


def action_rows(records: Iterable[RunRecord], account_names: Mapping[str, str]) -> list[dict[str, str]]:
    """Every key action of the run, and every blocked user, by account, user, key and action.

    ``records``: the run's (:meth:`keyrotation.ledger.Ledger.run_records`); ``account_names``: account id to
    name (the run's account list). An action's ``result`` is its ledger status (``planned`` in a dry run,
    ``done``, ``skipped``, ``failed``...); ``error`` is a failed action's error name. A blocked user's
    ``action`` is ``blocked``, its ``result`` ``blocked`` (or ``blocked until <date>``) and its ``reason`` the
    notice.
    """
    rows = []
    for record in records:
        if isinstance(record, ActionRecord):
            rows.append(
                {
                    "accountId": _text(record.account_id),
                    "accountName": _name(record, account_names),
                    "userName": _text(record.user_name),
                    "keyId": _text(record.key_id),
                    "action": _text(record.type.value),
                    "result": _text(record.status.value),
                    "reason": _text(record.reason),
                    "error": _text(record.error),
                }
            )
        elif isinstance(record, NoticeRecord) and record.type is NoticeKind.BLOCKED:
            due = _text(record.due)[:10]
            rows.append(
                {
                    "accountId": _text(record.account_id),
                    "accountName": _name(record, account_names),
                    "userName": _text(record.user_name),
                    "keyId": "" if record.key_id in (None, "-") else _text(record.key_id),
                    "action": BLOCKED,
                    "result": f"blocked until {due}" if due else "blocked",
                    "reason": _text(record.detail),
                    "error": "",
                }
            )
    return sorted(rows, key=lambda row: (row["accountId"], row["userName"], row["keyId"], row["action"]))


def _name(record: ActionRecord | NoticeRecord, account_names: Mapping[str, str]) -> str:
    return _text(record.account_name) or account_names.get(_text(record.account_id), "")


def _text(value: str | None) -> str:
    return "" if value is None else value[:_MAX_TEXT]


def csv_cell(value: Any) -> str:
    """A value as a CSV cell that no spreadsheet runs as a formula.

    >>> [csv_cell(value) for value in ("alice", "=1+1", "+x", "-x", "@SUM(A1)", 3, None)]
    ['alice', "'=1+1", "'+x", "'-x", "'@SUM(A1)", '3', '']
    """
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_text(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """The rows as CSV (a header, then one line each), every cell through :func:`csv_cell`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(column)) for column in columns])
    return out.getvalue()


def json_text(rows: Iterable[Mapping[str, Any]]) -> str:
    """The rows as a JSON array (one object each).

    >>> json_text([{"userName": "alice"}])
    '[{"userName": "alice"}]'
    """
    return json.dumps(list(rows), sort_keys=False, default=str)


def write(s3: Any, bucket: str, owner: str, key: str, text: str) -> None:
    """Put one file of the run (CSV or JSON, by its name) in the run bucket, owned by ``owner``."""
    content_type = "text/csv; charset=utf-8" if key.endswith(".csv") else "application/json"
    s3.put_object(
        Bucket=bucket, Key=key, Body=text.encode("utf-8"), ContentType=content_type, ExpectedBucketOwner=owner
    )


def fragment_key(run_id: str, account_id: str) -> str:
    """Where AuditKeys writes one account's inventory fragment.

    >>> fragment_key("run-1", "111122223333")
    'reports/run-1/inventory/111122223333.json'
    """
    return f"{inventory_prefix(run_id)}{account_id}.json"


def read_fragments(
    s3: Any, bucket: str, owner: str, keys: Sequence[str], workers: int = FRAGMENT_READERS
) -> Iterator[dict[str, Any]]:
    """The fragments at ``keys`` that exist, in that order, read ``workers`` at a time.

    A run of 10,000 accounts reads 10,000 fragments. An account whose audit did not finish has none
    (the run reports it failed); a fragment that is not one raises :class:`InventoryUnreadable`.
    """

    def read(key: str) -> dict[str, Any] | None:
        try:
            with translate_errors():
                body = s3.get_object(Bucket=bucket, Key=key, ExpectedBucketOwner=owner)["Body"].read()
        except ClientError as error:
            if error_code(error) == "NoSuchKey":
                return None
            raise
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if not isinstance(document, dict) or not isinstance(document.get("rows"), list):
            raise InventoryUnreadable(f"the inventory fragment {key} is not an inventory fragment")
        return document

    with ThreadPoolExecutor(max_workers=workers) as pool:
        # Each read runs in a copy of this context (the invocation's environment and logging keys).
        for document in pool.map(lambda key: contextvars.copy_context().run(read, key), keys):
            if document is not None:
                yield document


def locations(bucket: str, run_id: str, names: Sequence[str]) -> dict[str, Any]:
    """The small ``reports`` object of the summary: where the run's files are.

    >>> locations("run-bucket", "run-1", ["actions.csv"])
    {'bucket': 'run-bucket', 'prefix': 'reports/run-1/', 'keys': ['reports/run-1/actions.csv']}
    """
    return {"bucket": bucket, "prefix": prefix(run_id), "keys": [prefix(run_id) + name for name in names]}
