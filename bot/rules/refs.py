"""Branch names the bot makes: always valid git refs, one per artifact and version (pure).

Git's rules for a ref name (``git check-ref-format``): no component may start with ``.`` or end
with ``.lock``; no ``..``, ``@{``, ``//``, control characters, space, ``~ ^ : ? * [ \\``; not
``@`` alone; no leading or trailing ``/``, no trailing ``.``. GitHub answers 422 to a ref that
breaks them. The versions that end up in branch names come from outside (a Docker tag may be
``v2.2..1`` or ``x.lock``, a Git tag may hold ``/``), so each is turned into one component that
keeps a plain version as it is and gives anything else a readable part and a hash of the whole:
two different versions never share a branch, and a redelivered event finds the same one.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["is_valid_branch", "is_valid_ref", "ref_component", "safe_slug"]

_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_PLAIN = re.compile(r"[A-Za-z0-9._+-]+")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: Characters of the readable part of a hashed component.
READABLE = 60


def is_valid_ref(ref: str) -> bool:
    """True when ``ref`` (``refs/heads/...``) passes ``git check-ref-format``."""
    if not ref or ref == "@" or ref.startswith("/") or ref.endswith(("/", ".")):
        return False
    if "//" in ref or ".." in ref or "@{" in ref or _FORBIDDEN.search(ref):
        return False
    return all(not part.startswith(".") and not part.endswith(".lock") for part in ref.split("/"))


def is_valid_branch(name: str) -> bool:
    """True when ``refs/heads/<name>`` is a valid ref (and the name is plain ASCII)."""
    return name.isascii() and is_valid_ref(f"refs/heads/{name}")


def ref_component(text: str) -> str:
    """``text`` as one valid ref component: itself when it already is a plain one, otherwise
    its safe characters and a hash of the whole text (``v2.2..1`` -> ``v2.2.1-3c5e...``)."""
    if _PLAIN.fullmatch(text) and is_valid_ref(text):
        return text
    readable = re.sub(r"\.{2,}", ".", _UNSAFE.sub("-", text)).strip(".-")[:READABLE]
    readable = readable.removesuffix(".lock").strip(".-")
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{readable}-{digest}" if readable else digest


def safe_slug(slug: str, original: str) -> str:
    """A readable slug made from ``original`` when it is a valid ref component, otherwise
    :func:`ref_component` of ``original`` (a slug may still end in ``.lock``)."""
    if slug and _PLAIN.fullmatch(slug) and is_valid_ref(slug):
        return slug
    return ref_component(original)
