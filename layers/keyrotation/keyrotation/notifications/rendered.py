"""What rendering produces: an email's subject and bodies, and the template overrides it could not use.

Example:
    >>> email = RenderedEmail("Subject", "<p>Hi</p>", "Hi", (TemplateFallback("digest.txt.j2", "no such object"),))
    >>> [fallback.template for fallback in email.fallbacks]
    ['digest.txt.j2']
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TemplateFallback:
    """A packaged template used instead of an S3 override, and why."""

    template: str
    reason: str


@dataclass(frozen=True)
class RenderedEmail:
    """An email ready to send: its subject, HTML and plain-text bodies."""

    subject: str
    html: str
    text: str
    fallbacks: tuple[TemplateFallback, ...] = ()
