"""Fixtures shared by every test: the in-memory AWS, an organization, the deployed stack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localaws import LocalAws, Organization, Stack


@pytest.fixture
def aws() -> Iterator[LocalAws]:
    with LocalAws() as environment:
        yield environment


@pytest.fixture
def org(aws: LocalAws) -> Organization:
    """Three member accounts with the member role, and one (`norole`) without it."""
    return aws.organization(["alpha", "beta", "gamma", "norole"], without_role=["norole"])


@pytest.fixture
def stack(aws: LocalAws, org: Organization) -> Stack:
    """The stack as template.yaml deploys it, for real (DryRun off)."""
    return aws.deploy({"DryRun": "false"})
