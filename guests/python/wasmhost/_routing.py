"""Route path patterns: ``/orders/{id}``, ``/files/{rest:path}``.

The rules are the host's (see the ``manifest`` interface in
wit/platform.wit), so the host and the SDK pick the same route:

* A pattern is ``/`` followed by segments separated by ``/``.
* A literal segment matches the same text (compared after
  percent-decoding the request's segment).
* ``{name}`` matches exactly one non-empty segment (no ``/``).
* ``{name:path}``, only as the last segment, matches the rest of the path
  (zero or more characters, ``/`` included).
* Matching is on the path without its query string; a trailing ``/``
  matters (``/a`` and ``/a/`` are different paths).
* Parameter values are percent-decoded (UTF-8).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class _Segment:
    kind: str  # "literal", "param" or "path"
    value: str  # the literal text, or the parameter name


class PathPattern:
    """A compiled route path pattern."""

    __slots__ = ("pattern", "segments", "names", "literal")

    def __init__(self, pattern: str) -> None:
        if not isinstance(pattern, str) or not pattern.startswith("/"):
            raise ValueError(f"route path must start with '/': {pattern!r}")
        if "?" in pattern or "#" in pattern:
            raise ValueError(f"route path must not contain '?' or '#': {pattern!r}")
        self.pattern = pattern
        parts = pattern[1:].split("/")
        segments: list[_Segment] = []
        names: list[str] = []
        for index, part in enumerate(parts):
            if "{" not in part and "}" not in part:
                segments.append(_Segment("literal", part))
                continue
            if not (part.startswith("{") and part.endswith("}")) or part.count("{") != 1 or part.count("}") != 1:
                raise ValueError(
                    f"in route {pattern!r}: a parameter must be a whole segment, like /{{name}}: {part!r}"
                )
            name, colon, converter = part[1:-1].partition(":")
            if not _NAME.match(name):
                raise ValueError(f"in route {pattern!r}: invalid parameter name {name!r}")
            if name in names:
                raise ValueError(f"in route {pattern!r}: parameter {name!r} appears twice")
            if colon and converter != "path":
                raise ValueError(
                    f"in route {pattern!r}: unknown converter {converter!r} "
                    "(only {name} and a final {name:path} are supported)"
                )
            if colon and index != len(parts) - 1:
                raise ValueError(f"in route {pattern!r}: {{{name}:path}} must be the last segment")
            segments.append(_Segment("path" if colon else "param", name))
            names.append(name)
        self.segments = tuple(segments)
        self.names = tuple(names)
        self.literal = not names

    def __repr__(self) -> str:
        return f"PathPattern({self.pattern!r})"

    def match(self, raw_path: str) -> dict[str, str] | None:
        """The parameters when `raw_path` (percent-encoded, without query)
        matches, else None."""
        if self.literal and "%" not in raw_path:
            return {} if raw_path == self.pattern else None
        if not raw_path.startswith("/"):
            return None
        rest = raw_path[1:]
        params: dict[str, str] = {}
        segments = self.segments
        last = len(segments) - 1
        for index, segment in enumerate(segments):
            if segment.kind == "path":
                params[segment.value] = unquote(rest)
                return params
            if index < last:
                part, slash, rest = rest.partition("/")
                if not slash:  # the path has fewer segments
                    return None
            else:
                if "/" in rest:
                    return None
                part = rest
            if segment.kind == "literal":
                if part != segment.value and unquote(part) != segment.value:
                    return None
            else:
                if not part:
                    return None
                params[segment.value] = unquote(part)
        return params
