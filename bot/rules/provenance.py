"""Where an image was built from: the application repository and commit (pure).

Announcements say it (a ``repository_dispatch`` payload, a GitHub Packages event) and dev bump
commits record it as trailers; these are the checks both go through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["BuiltFrom", "parse_repository", "parse_revision", "repository_from_url"]

# GitHub logins: letters, digits and single hyphens, at most 39 characters. Repository names:
# letters, digits, ``.``, ``_``, ``-``, at most 100, never ``.`` or ``..``.
_OWNER = r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}"
_NAME = r"[A-Za-z0-9._-]{1,100}"
_REPOSITORY_RE = re.compile(rf"({_OWNER})/({_NAME})")
_REVISION_RE = re.compile(r"[0-9a-fA-F]{40}")


@dataclass(frozen=True)
class BuiltFrom:
    """The application repository (``owner/name``) and commit an image was built from."""

    repository: str
    revision: str | None  # 40 hex characters, lower case; None when only the repository is known

    @property
    def short(self) -> str:
        return f"{self.repository}@{self.revision[:7]}" if self.revision else self.repository


def parse_repository(text: object) -> str | None:
    """``owner/name`` as GitHub spells repositories, or None."""
    if not isinstance(text, str):
        return None
    match = _REPOSITORY_RE.fullmatch(text)
    if match is None or match.group(2) in (".", ".."):
        return None
    return text


def parse_revision(text: object) -> str | None:
    """A full commit SHA (40 hex characters), lower-cased, or None. Short SHAs, branch and tag
    names are refused: they are not immutable, and a comparison must be."""
    if not isinstance(text, str) or _REVISION_RE.fullmatch(text) is None:
        return None
    return text.lower()


def repository_from_url(url: object, host: str) -> str | None:
    """``owner/name`` of ``https://<host>/owner/name[.git]``, for the OCI source label; None
    for another host or anything else."""
    if not isinstance(url, str) or not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or parts.hostname is None:
        return None
    if parts.hostname.lower() != host.lower() or parts.query or parts.fragment:
        return None
    path = parts.path.strip("/").removesuffix(".git")
    return parse_repository(path)
