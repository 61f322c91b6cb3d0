"""Where to go once logged in: a path of this site, or the home page — never another site.

A target is read as browsers read a ``Location``: they drop tabs and line breaks anywhere
and C0 controls and spaces at both ends, and take a backslash for a slash (``/\\t/evil``
and ``/\\evil`` both mean ``//evil``, another host). A proxy or a later hop may also
percent-decode it (``/%5Cevil``, ``/%2F/evil``). The target is kept, unchanged, only when it
holds no control, space or invisible character and every such reading is a path of this
site: one ``/`` first, no scheme, no host. Anything else gives ``/``.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

HOME = "/"
DECODINGS = 4  # readings checked; a target still encoded after them is refused
_ENDS = "".join(map(chr, range(0x21)))  # C0 controls and the space
_DROPPED = str.maketrans("", "", "\t\r\n")


def local_target(value: str | None) -> str:
    """``value`` when it can only lead to a page of this site; :data:`HOME` otherwise."""
    if not value or any(_invisible(c) for c in value):
        return HOME
    reading = value
    for _ in range(DECODINGS):
        if not _local(_as_browser(reading)):
            return HOME
        decoded = unquote(reading)
        if decoded == reading:
            return value
        reading = decoded
    return HOME


def _invisible(char: str) -> bool:
    """Controls, format characters (zero-width…), separators (spaces): never in our links."""
    return unicodedata.category(char)[0] in "CZ"


def _as_browser(target: str) -> str:
    return target.strip(_ENDS).translate(_DROPPED).replace("\\", "/")


def _local(path: str) -> bool:
    if not path.startswith("/") or path.startswith("//"):
        return False
    if any(unicodedata.category(c) == "Cc" for c in path):
        return False  # a decoded NUL or DEL: nothing of ours
    parts = urlsplit(path)
    return not parts.scheme and not parts.netloc
