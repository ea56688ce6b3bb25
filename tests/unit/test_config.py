"""Configuration: the template is the one source of the settings, and a missing one is an error.

Every environment here is the one template.yaml gives the function (see
:mod:`localaws.defaults`), so these tests also prove the template sets every
variable the code reads, on every function that reads it.
"""

from __future__ import annotations

import doctest
from collections.abc import Callable, Mapping
from datetime import timedelta
from types import ModuleType

import pytest

import keyrotation.config as config
import keyrotation.ids as ids
import keyrotation.model as model
from keyrotation.config import LifecycleConfig, ScopeConfig
from keyrotation.errors import InvalidConfiguration, InvalidInput
from keyrotation.events import Account
from keyrotation.organization import parse_request
from keyrotation.schedule import run_interval
from localaws.defaults import default_lifecycle, function_environment, parameter_defaults

LIFECYCLE_VARIABLES = [
    "ROTATION_PERIOD_DAYS",
    "INACTIVE_PERIOD_DAYS",
    "DELETE_PERIOD_DAYS",
    "WARNING_DAYS",
    "MAX_ACTIONS_PER_ACCOUNT",
    "EXEMPT_TAG_KEY",
    "EXEMPT_GROUP_NAME",
    "SCHEDULE_EXPRESSION",
    "MAX_EXEMPTION_DAYS",
]
FUNCTIONS = [
    "ListAccountsFunction",
    "AuditKeysFunction",
    "CreateKeyFunction",
    "VerifyKeyFunction",
    "StoreSecretFunction",
    "DisableKeyFunction",
    "DeleteKeyFunction",
    "NotifyFunction",
    "SummarizeFunction",
]


def test_the_schedule_is_the_templates() -> None:
    defaults = parameter_defaults()
    schedule = default_lifecycle()
    assert (schedule.rotation_days, schedule.inactive_days, schedule.delete_days, schedule.warning_days) == (
        int(defaults["RotationPeriodDays"]),
        int(defaults["InactivePeriodDays"]),
        int(defaults["DeletePeriodDays"]),
        int(defaults["WarningDays"]),
    )
    assert schedule.max_actions_per_account == int(defaults["MaxActionsPerAccount"])
    assert (schedule.exempt_tag_key, schedule.exempt_group_name) == (
        defaults["ExemptTagKey"],
        defaults["ExemptGroupName"],
    )
    assert schedule.run_interval == run_interval(defaults["ScheduleExpression"]) == timedelta(days=1)  # daily


@pytest.mark.parametrize(("r", "i", "d"), [(75, 90, 100), (1, 2, 3), (30, 60, 90), (10, 11, 400)])
def test_the_periods_between_the_steps_are_derived_from_r_i_and_d(r: int, i: int, d: int) -> None:
    hourly = timedelta(hours=1)  # a schedule that runs more often than every I-R days, as it must
    schedule = default_lifecycle(rotation_days=r, inactive_days=i, delete_days=d, run_interval=hourly)
    assert schedule.disable_grace_days == i - r
    assert schedule.quarantine_days == d - i
    assert schedule.delete_grace_days == d - r
    assert schedule.disable_grace_days + schedule.quarantine_days == schedule.delete_grace_days


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_every_function_gets_the_whole_schedule_from_the_template(function_id: str) -> None:
    assert LifecycleConfig.from_env(function_environment(function_id)) == default_lifecycle()


@pytest.mark.parametrize("name", LIFECYCLE_VARIABLES)
def test_a_missing_lifecycle_variable_is_a_configuration_error(name: str) -> None:
    environment = function_environment("AuditKeysFunction")
    del environment[name]
    with pytest.raises(InvalidConfiguration, match=f"^{name} is not set$"):
        LifecycleConfig.from_env(environment)


def test_the_run_settings_come_from_the_template() -> None:
    environment = function_environment("ListAccountsFunction")
    defaults = parameter_defaults()
    assert config.dry_run(environment) is (defaults["DryRun"] == "true")
    assert config.max_concurrency(environment) == int(defaults["MaxConcurrency"])
    assert config.owner_email_tag_key(environment) == defaults["OwnerEmailTagKey"]
    scope = ScopeConfig.from_env(environment)
    assert scope == ScopeConfig(exclude_accounts=frozenset(), include_ous=frozenset())  # empty by default


@pytest.mark.parametrize(
    ("name", "read"),
    [
        ("DRY_RUN", config.dry_run),
        ("MAX_CONCURRENCY", config.max_concurrency),
        ("OWNER_EMAIL_TAG_KEY", config.owner_email_tag_key),
        ("EXCLUDE_ACCOUNTS", ScopeConfig.from_env),
        ("INCLUDE_OUS", ScopeConfig.from_env),
    ],
)
def test_a_missing_run_variable_is_a_configuration_error(
    name: str, read: Callable[[Mapping[str, str]], object]
) -> None:
    environment = function_environment("ListAccountsFunction")
    del environment[name]
    with pytest.raises(InvalidConfiguration, match=f"^{name} is not set$"):
        read(environment)


def _with(expression: str, r: int, i: int) -> dict[str, str]:
    return {
        **function_environment("AuditKeysFunction"),
        "SCHEDULE_EXPRESSION": expression,
        "ROTATION_PERIOD_DAYS": str(r),
        "INACTIVE_PERIOD_DAYS": str(i),
    }


def test_a_weekly_schedule_is_fine_while_it_runs_more_often_than_the_grace_period() -> None:
    assert LifecycleConfig.from_env(_with("cron(0 6 ? * MON *)", 75, 90)).run_interval == timedelta(days=7)
    with pytest.raises(InvalidConfiguration, match="leave 7 days, 0:00:00 between two runs"):
        LifecycleConfig.from_env(_with("cron(0 6 ? * MON *)", 84, 90))  # I-R = 6 days, less than a week


@pytest.mark.parametrize(
    ("expression", "r", "i", "message"),
    [
        ("rate(15 days)", 75, 90, "less than both RotationPeriodDays \\(75\\) and InactivePeriodDays - "),
        ("cron(0 6 * * ? *)", 1, 30, "RotationPeriodDays \\(1\\)"),
        ("cron(0 6 * * ? *)", 30, 31, "InactivePeriodDays - RotationPeriodDays \\(1\\)"),
        ("cron(0 6 L * ? *)", 75, 90, "day-of-month 'L' is not supported"),
        ("daily", 75, 90, "is neither rate"),
    ],
)
def test_a_schedule_that_runs_too_rarely_or_cannot_be_read_is_a_configuration_error(
    expression: str, r: int, i: int, message: str
) -> None:
    with pytest.raises(InvalidConfiguration, match=message):
        LifecycleConfig.from_env(_with(expression, r, i))


def test_an_empty_exemption_group_means_no_group_but_an_empty_tag_key_is_refused() -> None:
    environment = function_environment("AuditKeysFunction")
    assert LifecycleConfig.from_env({**environment, "EXEMPT_GROUP_NAME": ""}).exempt_group_name == ""
    with pytest.raises(InvalidConfiguration, match="ExemptTagKey must not be empty"):
        LifecycleConfig.from_env({**environment, "EXEMPT_TAG_KEY": " "})


@pytest.mark.parametrize("account_id", ["11112222333", "1111222233334", "1111-2222-33", "abcdefghijkl", ""])
def test_every_place_refuses_the_same_malformed_account_ids(account_id: str) -> None:
    if account_id:  # an empty ExcludeAccounts is the template's default: no account is excluded
        environment = {**function_environment("ListAccountsFunction"), "EXCLUDE_ACCOUNTS": account_id}
        with pytest.raises(InvalidConfiguration, match="EXCLUDE_ACCOUNTS"):
            ScopeConfig.from_env(environment)
    with pytest.raises(InvalidInput, match="malformed account id"):
        parse_request({"accounts": [account_id]})
    with pytest.raises(InvalidInput, match="is not 12 digits"):
        Account.from_event({"account": {"id": account_id}})


@pytest.mark.parametrize("module", [config, ids, model], ids=lambda module: module.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried >= 1 and failures == 0
