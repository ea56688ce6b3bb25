"""The run's metrics: published once per run, by Summarize, from the run's summary.

The stack's alarms (``AccountsFailed``, ``OverdueKeys``) and dashboard read these names, in the
namespace ``POWERTOOLS_METRICS_NAMESPACE`` with the dimension ``service`` (``summarize``), as the
template sets them. Key counts are real actions only: a dry run publishes 0 rotated, disabled and
deleted (nothing was), while its failed accounts and overdue keys are as real as any.

Example:
    >>> summary = {"dryRun": False, "accounts": {"failed": 1},
    ...            "keys": {"rotated": 2, "disabled": 1, "deleted": 0, "overdue": 3},
    ...            "notices": {"notificationFailures": 0, "emailsFailed": 2}}
    >>> run_metrics(summary)["KeysRotated"], run_metrics(summary)["NotificationsFailed"]
    (2, 2)
    >>> run_metrics({**summary, "dryRun": True, "keys": {"wouldRotate": 2, "overdue": 3}})["KeysRotated"]
    0
"""

from __future__ import annotations

from typing import Any

from keyrotation.observability import MetricUnit, metrics


def run_metrics(summary: dict[str, Any]) -> dict[str, int]:
    """Metric name -> value for one run's summary (see the module's docstring)."""
    keys = summary.get("keys") or {}
    real = not summary.get("dryRun")
    notices = summary.get("notices") or {}
    return {
        "KeysRotated": keys.get("rotated", 0) if real else 0,
        "KeysDisabled": keys.get("disabled", 0) if real else 0,
        "KeysDeleted": keys.get("deleted", 0) if real else 0,
        "AccountsFailed": summary["accounts"]["failed"],
        "NotificationsFailed": notices.get("notificationFailures", 0) + notices.get("emailsFailed", 0),
        "OverdueKeys": keys.get("overdue", 0),
    }


def publish(summary: dict[str, Any]) -> None:
    """Add the run's metrics; the handler's decorator flushes them (one EMF document) when it returns."""
    for name, value in run_metrics(summary).items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
