"""Rendering an email: ``<kind>.html.j2`` and ``<kind>.txt.j2``, S3 override first, packaged template as fallback.

An override that is missing, unreadable or broken (syntax error, unknown
variable, any error while rendering), or whose rendering is too large or too
slow (:mod:`~keyrotation.notifications.render_limits`), is replaced by the packaged template,
and the fallback is returned with the email so the run report can list it.

Example:
    >>> from pathlib import Path
    >>> renderer = Renderer(Path("templates"))           # doctest: +SKIP
    >>> renderer.render_digest(digest, guide).subject      # doctest: +SKIP
    'IAM access key changes in AWS account prod (111122223333)'
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, TemplateNotFound, TemplateSyntaxError

from keyrotation.notifications.digest import Digest
from keyrotation.notifications.environment import template_environment
from keyrotation.notifications.overrides import OverrideLoader
from keyrotation.notifications.render_limits import render_within
from keyrotation.notifications.rendered import RenderedEmail, TemplateFallback
from keyrotation.notifications.report import RunReport
from keyrotation.notifications.settings import PRODUCT, Guide
from keyrotation.notifications.subjects import digest_subject, run_report_subject
from keyrotation.notifications.values import clip
from keyrotation.observability import logger

DIGEST = "digest"
RUN_REPORT = "run_report"
TEMPLATE_KINDS = (DIGEST, RUN_REPORT)
FORMATS = ("html", "txt")


class Renderer:
    """Renders the HTML and text versions of an email, S3 override first, packaged template as fallback."""

    def __init__(self, packaged: Path, overrides: OverrideLoader | None = None) -> None:
        self.packaged_dir = packaged
        packaged_loader = FileSystemLoader(str(packaged))
        self._packaged = template_environment(packaged_loader)
        self._overrides = overrides
        self._with_overrides = template_environment(ChoiceLoader([overrides, packaged_loader])) if overrides else None

    def render(self, kind: str, subject: str, context: Mapping[str, Any]) -> RenderedEmail:
        if kind not in TEMPLATE_KINDS:
            raise ValueError(f"no template kind {kind!r}")
        context = {"product": PRODUCT, **context}
        parts: dict[str, str] = {}
        fallbacks: list[TemplateFallback] = []
        for fmt in FORMATS:
            name = f"{kind}.{fmt}.j2"
            parts[fmt], failure = self._render_one(name, context)
            if failure:
                fallbacks.append(failure)
        if self._overrides:
            fallbacks += [
                TemplateFallback(name, reason) for name, reason in sorted(self._overrides.unavailable.items())
            ]
        return RenderedEmail(subject=subject, html=parts["html"], text=parts["txt"], fallbacks=tuple(fallbacks))

    def _render_one(self, name: str, context: Mapping[str, Any]) -> tuple[str, TemplateFallback | None]:
        if self._with_overrides is None:
            return self._packaged.get_template(name).render(context), None
        try:
            return render_within(self._with_overrides.get_template(name), context), None
        except Exception as error:  # noqa: BLE001 - an override is foreign code: any failure means "use ours"
            failure = TemplateFallback(name, _describe_template_error(error))
            logger.warning(
                "template override failed; packaged template used", extra={"template": name, "reason": failure.reason}
            )
            return self._packaged.get_template(name).render(context), failure

    def render_digest(self, digest: Digest, guide: Guide) -> RenderedEmail:
        context = {"digest": digest, "guide": guide, "preview": digest.preview, "run_id": digest.run_id}
        return self.render(DIGEST, digest_subject(digest), context)

    def render_run_report(self, report: RunReport) -> RenderedEmail:
        """The report lists its own template fallbacks too: it is rendered again when there were some."""
        context = {"report": report, "preview": report.preview, "run_id": report.run_id}
        rendered = self.render(RUN_REPORT, run_report_subject(report), context)
        if not rendered.fallbacks:
            return rendered
        report = report.with_fallbacks(rendered.fallbacks)
        return self.render(RUN_REPORT, run_report_subject(report), {**context, "report": report})


def _describe_template_error(error: Exception) -> str:
    if isinstance(error, TemplateSyntaxError):
        where = error.filename or error.name or "template"
        text = f"syntax error in {where}, line {error.lineno}: {error.message}"
    elif isinstance(error, TemplateNotFound):
        text = f"template {error.name} not found"
    else:
        text = f"{type(error).__name__}: {error}"
    return clip(text, 300)
