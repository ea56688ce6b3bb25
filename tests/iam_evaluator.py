"""A small evaluator of IAM policy documents, for proving what the product's policies allow.

moto does not enforce resource policies, session policies or conditions, so the tests that say
"only the user can read the secret" evaluate the documents themselves, here. It follows the IAM
policy evaluation logic, no further than the product needs:

- Effect Allow/Deny; Action/NotAction and Resource/NotResource with ``*`` and ``?`` wildcards
  (actions case-insensitive); Principal/NotPrincipal (``"*"``, ``{"AWS": ...}`` with user, role
  and account ARNs or account ids);
- Condition: the String*, Arn*, Bool and Null operators, the ``IfExists`` suffix and the
  ``ForAnyValue:``/``ForAllValues:`` qualifiers, policy variables (``${aws:PrincipalTag/x}``) in
  their values (a variable the request has no value for matches nothing); keys case-insensitive.
  A key missing from the request makes a positive operator false and a negated one
  (``StringNotEquals``, ``ArnNotLike``...) true; the values of a negated operator must all differ.
  An operator it does not know is an error, never a silent pass;
- the decision: an explicit Deny in any policy wins; otherwise, within one account, a request is
  allowed by a resource policy that names the principal, or by an identity policy that allows it
  and, for a role session with a session policy, that session policy as well; across accounts
  (the resource's ARN names another account) by the resource policy and the identity policies both,
  and so is sts:AssumeRole, whatever the accounts: a role's trust policy must always allow.

    >>> document = {"Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}
    >>> request = Request(principal_arn="arn:aws:iam::111122223333:user/alice", action="s3:GetObject", resource="x")
    >>> decide(request, identity=[document]).allowed
    True
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from typing import Any

Document = Mapping[str, Any]


class Decision(str, Enum):
    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"

    @property
    def allowed(self) -> bool:
        return self is Decision.ALLOW


@dataclass(frozen=True)
class Request:
    """One API request: who (``aws:PrincipalArn``), what, on which resource, and its condition keys."""

    principal_arn: str
    action: str
    resource: str
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)

    @property
    def account(self) -> str:
        return self.principal_arn.split(":")[4] if self.principal_arn.startswith("arn:") else ""

    def value(self, key: str) -> list[str] | None:
        """The request's value(s) of a condition key; None when the request has no such key."""
        keys = {"aws:principalarn": self.principal_arn, "aws:principalaccount": self.account}
        for name, value in self.context.items():
            keys[name.lower()] = value  # type: ignore[assignment]
        found = keys.get(key.lower())
        if found is None:
            return None
        return [found] if isinstance(found, str) else [str(item) for item in found]


# -- matching -------------------------------------------------------------------------------------------------


@cache
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE if ignore_case else 0)


def wildcard_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM wildcards: ``*`` any run of characters (``/`` and ``:`` included), ``?`` any one character."""
    if "[" in pattern:  # fnmatch would read a character class; IAM has none
        pattern = pattern.replace("[", "[[]")
    return _pattern(pattern, ignore_case).fullmatch(value) is not None


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _action_matches(statement: Document, action: str) -> bool:
    if "Action" in statement:
        return any(wildcard_match(pattern, action, ignore_case=True) for pattern in _listed(statement["Action"]))
    if "NotAction" in statement:
        return not any(wildcard_match(pattern, action, ignore_case=True) for pattern in _listed(statement["NotAction"]))
    raise ValueError(f"statement has neither Action nor NotAction: {statement}")


def _resource_matches(statement: Document, resource: str) -> bool:
    if "Resource" in statement:
        return any(wildcard_match(pattern, resource) for pattern in _listed(statement["Resource"]))
    if "NotResource" in statement:
        return not any(wildcard_match(pattern, resource) for pattern in _listed(statement["NotResource"]))
    return True  # a resource policy's statement may leave Resource out: the resource it is attached to


def _principal_in(principal: Any, request: Request, accounts: bool = True) -> bool:
    """Whether ``request``'s principal is named; an account (id or root ARN) names all its principals if ``accounts``."""
    if principal == "*":
        return True
    if not isinstance(principal, Mapping) or set(principal) - {"AWS"}:
        raise ValueError(f"unsupported Principal {principal!r}")
    for entry in _listed(principal.get("AWS")):
        if entry == "*":
            return True
        if re.fullmatch(r"\d{12}", entry) or entry.endswith(":root"):
            account = entry if entry.isdigit() else entry.split(":")[4]
            if accounts and request.account == account:
                return True
        elif entry == request.principal_arn:
            return True
    return False


def _principal_matches(statement: Document, request: Request, accounts: bool) -> bool:
    if "Principal" in statement:
        return _principal_in(statement["Principal"], request, accounts=accounts or statement["Effect"] == "Deny")
    if "NotPrincipal" in statement:
        return not _principal_in(statement["NotPrincipal"], request)
    raise ValueError(f"a resource policy statement needs Principal or NotPrincipal: {statement}")


# -- conditions -----------------------------------------------------------------------------------------------


def _string_equals(pattern: str, value: str) -> bool:
    return pattern == value


def _string_equals_ignore_case(pattern: str, value: str) -> bool:
    return pattern.lower() == value.lower()


def _string_like(pattern: str, value: str) -> bool:
    return wildcard_match(pattern, value)


def _arn_like(pattern: str, value: str) -> bool:
    # Each of the six colon-separated parts is matched on its own; wildcards do not cross a colon.
    wanted, given = pattern.split(":", 5), value.split(":", 5)
    return len(wanted) == len(given) == 6 and all(wildcard_match(p, v) for p, v in zip(wanted, given, strict=True))


def _bool(pattern: str, value: str) -> bool:
    return pattern.lower() == value.lower()


# operator -> (match one policy value against one request value, negated)
_OPERATORS = {
    "StringEquals": (_string_equals, False),
    "StringNotEquals": (_string_equals, True),
    "StringEqualsIgnoreCase": (_string_equals_ignore_case, False),
    "StringNotEqualsIgnoreCase": (_string_equals_ignore_case, True),
    "StringLike": (_string_like, False),
    "StringNotLike": (_string_like, True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "Bool": (_bool, False),
}


_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def _with_variables(value: str, request: Request) -> str | None:
    """``value`` with its policy variables (``${aws:PrincipalTag/x}``) replaced; None if one has no value."""
    missing = False

    def replace(match: re.Match[str]) -> str:
        nonlocal missing
        found = request.value(match.group(1))
        if not found:
            missing = True
            return ""
        return found[0]

    resolved = _VARIABLE.sub(replace, value)
    return None if missing else resolved


def _condition_holds(operator: str, key: str, policy_values: Any, request: Request) -> bool:
    values = [str(value).lower() if isinstance(value, bool) else str(value) for value in _listed(policy_values)]
    wanted = [text for text in (_with_variables(value, request) for value in values) if text is not None]
    present = request.value(key)
    if operator == "Null":
        (expected,) = wanted
        return (present is None) == (expected.lower() == "true")
    qualifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    name = name.removesuffix("IfExists")
    if name not in _OPERATORS:
        raise ValueError(f"condition operator {operator} is not supported by this evaluator")
    match, negated = _OPERATORS[name]
    if present is None:
        return True if if_exists else negated
    if qualifier == "ForAllValues":
        return all(any(match(w, v) for w in wanted) != negated for v in present)
    if qualifier not in ("", "ForAnyValue"):
        raise ValueError(f"unknown qualifier in {operator}")
    if negated:
        return not any(match(w, v) for w in wanted for v in present)
    return any(match(w, v) for w in wanted for v in present)


def _conditions_hold(statement: Document, request: Request) -> bool:
    return all(
        _condition_holds(operator, key, values, request)
        for operator, keys in statement.get("Condition", {}).items()
        for key, values in keys.items()
    )


# -- statements and decisions ---------------------------------------------------------------------------------


def statements(document: Document) -> list[Document]:
    found = document.get("Statement", [])
    return [found] if isinstance(found, Mapping) else list(found)


def _applies(statement: Document, request: Request, resource_policy: bool, accounts: bool = False) -> bool:
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise ValueError(f"statement without a valid Effect: {statement}")
    if resource_policy and not _principal_matches(statement, request, accounts):
        return False
    return (
        _action_matches(statement, request.action)
        and _resource_matches(statement, request.resource)
        and _conditions_hold(statement, request)
    )


def matching(
    documents: Iterable[Document], request: Request, effect: str, resource_policy: bool = False, accounts: bool = False
) -> list[str]:
    """Sids (or indexes) of the statements with ``effect`` that apply to ``request``.

    In a resource policy, an Allow that names an account (its id or root ARN) applies to its principals
    only if ``accounts``: within one account, allowing the account delegates to the principal's own policies.
    """
    found = []
    for document in documents:
        for index, statement in enumerate(statements(document)):
            if statement.get("Effect") == effect and _applies(statement, request, resource_policy, accounts):
                found.append(str(statement.get("Sid", index)))
    return found


def decide(
    request: Request,
    identity: Sequence[Document] = (),
    resource: Sequence[Document] = (),
    session: Document | None = None,
    guardrails: Sequence[Document] = (),
) -> Decision:
    """The decision for ``request``.

    ``identity``: the principal's own policies; ``resource``: the policy of the resource (a role's
    trust policy for sts:AssumeRole); ``session``: the session policy of a role session, if any;
    ``guardrails``: service control policies, each of which must allow the request (a Deny in one
    wins, as everywhere). Within one account, either the resource policy (naming the principal) or
    the identity policies (and session policy) may allow; across accounts, both must.
    """
    every = [*identity, *guardrails] + ([session] if session is not None else [])
    if matching(every, request, "Deny") or matching(resource, request, "Deny", resource_policy=True):
        return Decision.EXPLICIT_DENY
    if any(not matching([scp], request, "Allow") for scp in guardrails):
        return Decision.IMPLICIT_DENY
    identity_allows = bool(matching(identity, request, "Allow")) and (
        session is None or bool(matching([session], request, "Allow"))
    )
    resource_account = request.resource.split(":")[4] if request.resource.count(":") >= 5 else request.account
    # A role is entered only if its trust policy allows it, even from its own account (checked here as across
    # accounts: trust and identity policy both, stricter only for a trust policy that names the principal itself).
    if request.action.lower() == "sts:assumerole" or (resource_account and resource_account != request.account):
        resource_allows = matching(resource, request, "Allow", resource_policy=True, accounts=True)
        return Decision.ALLOW if resource_allows and identity_allows else Decision.IMPLICIT_DENY
    if matching(resource, request, "Allow", resource_policy=True) or identity_allows:
        return Decision.ALLOW
    return Decision.IMPLICIT_DENY
