"""Template overrides read from S3 (``TemplateBucket``/``TemplatePrefix``), each object at most once.

An override that cannot be used (missing, denied, too large, not UTF-8, S3
unreachable) is not an error: the loader says ``TemplateNotFound``, so the
renderer's ``ChoiceLoader`` takes the packaged template, and the reason is
kept in :attr:`OverrideLoader.unavailable` for the run report.

Every read names the account that must own the bucket (``ExpectedBucketOwner``): a bucket
deleted and re-created under the same name by someone else is refused, not read.

Example:
    >>> loader = OverrideLoader(s3=None, bucket="templates-bucket", prefix="emails/", owner="111122223333")
    >>> loader.location("digest.html.j2")
    's3://templates-bucket/emails/digest.html.j2'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
from jinja2 import BaseLoader, Environment, TemplateNotFound

from keyrotation.aws import error_code


class OverrideLoader(BaseLoader):
    """Templates from ``s3://<bucket>/<prefix><name>``; each object is read at most once.

    An object that cannot be used raises ``TemplateNotFound`` (so a
    ``ChoiceLoader`` falls back to the packaged template) and is remembered in
    :attr:`unavailable` with the reason.
    """

    MAX_BYTES = 256 * 1024

    def __init__(self, s3: Any, bucket: str, prefix: str, owner: str) -> None:
        self._s3 = s3
        self.bucket = bucket
        self.prefix = prefix
        self.owner = owner
        self._sources: dict[str, str | None] = {}
        self.unavailable: dict[str, str] = {}

    def location(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{name}"

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        if template not in self._sources:
            source, problem = self._fetch(template)
            self._sources[template] = source
            if problem is not None:
                self.unavailable[template] = f"{self.location(template)}: {problem}"
        source = self._sources[template]
        if source is None:
            raise TemplateNotFound(template)
        return source, self.location(template), lambda: True

    def _fetch(self, name: str) -> tuple[str | None, str | None]:
        """(the template's text, None), or (None, why the object cannot be used)."""
        try:
            response = self._s3.get_object(
                Bucket=self.bucket, Key=f"{self.prefix}{name}", ExpectedBucketOwner=self.owner
            )
            if int(response.get("ContentLength") or 0) > self.MAX_BYTES:
                return None, f"larger than {self.MAX_BYTES // 1024} KiB"
            data = response["Body"].read()
        except ClientError as error:
            return None, _s3_problem(error)
        except (ConnectionError, HTTPClientError) as error:
            return None, f"S3 could not be reached ({type(error).__name__})"
        try:
            return str(data.decode("utf-8")), None
        except UnicodeDecodeError:
            return None, "not UTF-8 text"


def _s3_problem(error: ClientError) -> str:
    code = error_code(error)
    if code in ("NoSuchKey", "404", "NotFound"):
        return "no such object"
    if code in ("AccessDenied", "403"):
        return (
            "access denied (a missing object reads as AccessDenied without s3:ListBucket; a bucket not owned by "
            "TemplateBucketOwner is refused too)"
        )
    return f"S3 error {code or 'unknown'}"
