"""The user-to-secret name mapping is one-to-one over every valid IAM user name, in every account.

IAM user names are 1-64 characters of ``A-Za-z0-9+=,.@_-``; Secrets Manager names allow
``A-Za-z0-9/_+=.@-`` up to 512 characters. Two users that get the same name share one secret: the
second rotation writes its key into the first user's secret and re-points its policy.
"""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from keyrotation.errors import InvalidInput
from keyrotation.naming import parse_secret_name, secret_name

IAM_USER_NAME = re.compile(r"[A-Za-z0-9+=,.@_-]{1,64}")
SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
PUNCTUATION = "+=,.@_-"
# Every character IAM allows; half of them punctuation, where an encoding can go wrong.
iam_characters = st.one_of(st.sampled_from(string.ascii_letters + string.digits), st.sampled_from(PUNCTUATION))
user_names = st.text(alphabet=iam_characters, min_size=1, max_size=64)
account_ids = st.sampled_from(["111122223333", "444455556666", "000000000001"])


def valid_user_name(name: str) -> bool:
    return IAM_USER_NAME.fullmatch(name) is not None


def crafted_look_alikes(account_id: str, user_name: str) -> list[str]:
    """User names someone could create to land on the same secret as ``user_name``.

    Read back the user part of the secret name ``user_name`` gets, and the usual swaps of the
    characters an encoding might use (``,``, ``_``, ``/``), and keep the valid IAM names among them.
    """
    name = secret_name(account_id, user_name)
    inner = name.removeprefix(f"Account_{account_id}_User_").removesuffix("_AccessKey")
    candidates = {inner, user_name.replace(",", "_"), user_name.replace("_", ","), inner.replace("/", ",")}
    candidates |= {inner.replace("/", "_"), inner.replace("_", ","), user_name + "_AccessKey", user_name.lower()}
    return sorted(c for c in candidates if c != user_name and valid_user_name(c))


@given(account_id=account_ids, user_name=user_names)
def test_every_secret_name_is_one_secrets_manager_accepts(account_id: str, user_name: str) -> None:
    name = secret_name(account_id, user_name)
    assert SECRET_NAME.fullmatch(name), name
    assert name.startswith(f"Account_{account_id}_User_") and name.endswith("_AccessKey")


@given(account_id=account_ids, user_name=user_names)
@example(account_id="111122223333", user_name="ops,admin")
def test_no_other_valid_user_name_lands_on_the_same_secret(account_id: str, user_name: str) -> None:
    name = secret_name(account_id, user_name)
    for other in crafted_look_alikes(account_id, user_name):
        assert secret_name(account_id, other) != name, (user_name, other)


@given(pairs=st.lists(st.tuples(account_ids, user_names), min_size=2, max_size=40, unique=True))
def test_distinct_users_get_distinct_secret_names(pairs: list[tuple[str, str]]) -> None:
    names = {secret_name(account_id, user_name): (account_id, user_name) for account_id, user_name in pairs}
    assert len(names) == len(pairs)


def test_the_collision_found_by_hand_is_gone() -> None:
    assert secret_name("111122223333", "ops,admin") != secret_name("111122223333", "ops_admin_hdc4d8368")


@given(account_id=account_ids, user_name=user_names)
def test_names_that_differ_only_in_letter_case_keep_their_case(account_id: str, user_name: str) -> None:
    """IAM refuses a user whose name differs from an existing one only in case (a deleted user's name can
    come back in another case: its secret is then told apart by the user's id, not by the name)."""
    other = user_name.swapcase()
    assume(other != user_name)
    assert secret_name(account_id, user_name) != secret_name(account_id, other)


@given(account_id=account_ids, user_name=user_names)
def test_the_account_and_the_user_read_back_from_the_name(account_id: str, user_name: str) -> None:
    """An inverse exists, so the mapping is one-to-one whatever the names."""
    assert parse_secret_name(secret_name(account_id, user_name)) == (account_id, user_name)


@pytest.mark.parametrize(
    ("account_id", "user_name"),
    [
        ("111122223333", ""),
        ("111122223333", "x" * 65),
        ("111122223333", "ops/admin"),  # "/" would stand for a comma
        ("111122223333", "bob smith"),
        ("111122223333", "zo\u00eb"),
        ("11112222333", "alice"),
        ("111122223333a", "alice"),
    ],
)
def test_a_name_iam_would_refuse_gets_no_secret_name(account_id: str, user_name: str) -> None:
    with pytest.raises(InvalidInput):
        secret_name(account_id, user_name)
