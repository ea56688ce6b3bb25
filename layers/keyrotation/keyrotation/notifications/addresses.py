"""Email addresses: which strings are one plain address we send to, and in which spelling.

A user's owner tag and the account's email from Organizations are foreign
text; only a bare ``local@domain`` gets mail, lower-cased so one person gets
one digest however the address is spelled.

Example:
    >>> normalize_address("Alice@Example.com") == normalize_address("alice@example.com")
    True
"""

from __future__ import annotations

import re

# Used with fullmatch: ``$`` alone would accept a line break before the end.
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOMAIN_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def normalize_domain(value: str) -> str | None:
    """A domain as addresses are compared with it (lower-cased, Punycode), or None when it is not one.

    >>> normalize_domain(" Example.COM "), normalize_domain("bücher.example"), normalize_domain("not a domain")
    ('example.com', 'xn--bcher-kva.example', None)
    """
    address = normalize_address(f"x@{value.strip()}")
    return address.partition("@")[2] if address else None


def in_domains(address: str, domains: tuple[str, ...]) -> bool:
    """Whether ``address`` (normalized) is in one of ``domains`` or a subdomain of one; any, if none are given.

    >>> in_domains("alice@example.com", ("example.com",)), in_domains("bob@mail.example.com", ("example.com",))
    (True, True)
    >>> in_domains("eve@example.com.evil.test", ("example.com",)), in_domains("eve@notexample.com", ("example.com",))
    (False, False)
    """
    if not domains:
        return True
    domain = address.rpartition("@")[2]
    return any(domain == allowed or domain.endswith("." + allowed) for allowed in domains)


def normalize_address(value: object) -> str | None:
    """The address to send to, lower-cased, or None when ``value`` is not one plain address.

    Only a bare ``local@domain`` is accepted: no display name, no list, no
    whitespace or line break inside (so nothing can be smuggled into a header).
    The local part must be ASCII (SES refuses anything else); a Unicode domain
    is sent as Punycode. Addresses are lower-cased, so ``Alice@Example.com``
    and ``alice@example.com`` are one person and get one digest.

    >>> normalize_address(" Alice@Example.COM ")
    'alice@example.com'
    >>> normalize_address("bob@bücher.example")
    'bob@xn--bcher-kva.example'
    >>> [normalize_address(bad) for bad in ("", "alice", "a@b", "a b@c.com", "x@y.com\\nBcc: z@w.com", None)]
    [None, None, None, None, None, None]
    """
    if not isinstance(value, str):
        return None
    local, at, domain = value.strip().rpartition("@")
    if not at or len(local) > 64 or not _LOCAL_PART.fullmatch(local):
        return None
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or labels[-1].isdigit() or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        return None
    address = f"{local.lower()}@{ascii_domain}"
    return address if len(address) <= 254 else None
