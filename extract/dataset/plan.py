"""Pure planning: previous state + archive listing + reuse key → what to extract, what to rewrite.

Nothing here reads a file: every function takes plain values and returns plain values, so
the decisions of an extract run are unit-tested without Parquet or an archive.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# Better first: a report that reads fully beats one that reads in part, which beats one
# that could not be read at all.
STATUS_RANK = {
    "ok": 0,
    "checks_failed": 1,
    "partial": 2,
    "no_tables": 3,
    "too_large": 4,
    "timeout": 5,
    "error": 6,
}
FAILED_STATUSES = ("error", "timeout", "too_large")

REASON_NEW = "new record"
REASON_CHANGED = "changed bytes"
REASON_CODE = "new code"
REASON_CONVERTER = "new converter"
REASON_FORCED = "--all"
REASON_NO_DATASET = "no dataset to reuse"


@dataclass(frozen=True)
class Listed:
    """An archived document as the manifest lists it, before anything is read."""

    url: str
    site: str
    content: str  # digest of the page's and its attachments' sha256
    fetched_at: str


def content_digest(page_sha256: str, attachments: Iterable[tuple[str, str]]) -> str:
    """One digest for a page and its attachments (url, sha256): either changing changes it."""
    digest = hashlib.sha256(page_sha256.encode())
    for url, sha256 in sorted(attachments):
        digest.update(f"\0{url}\0{sha256}".encode())
    return digest.hexdigest()


@dataclass(slots=True)
class SourceState:
    """What the dataset knows of one archived document after extracting it."""

    url: str
    site: str
    content: str
    code: str
    converters: dict[str, str]
    agency_id: str | None
    year: int | None
    status: str
    fetched_at: str
    is_primary: bool = False
    agency: dict[str, str | None] = field(default_factory=dict)
    error: str | None = None  # why the document gives no agency-year
    failure: str | None = None  # the problem of an error, timeout or too_large

    @property
    def key(self) -> tuple[str, int] | None:
        """(agency_id, year) when the document can enter the dataset, else None."""
        if self.agency_id and self.year is not None:
            return (self.agency_id, self.year)
        return None

    def rank(self) -> tuple:
        """Sort key: the best status first, then the latest fetch, then the URL."""
        return (STATUS_RANK.get(self.status, 9), _negated(self.fetched_at), self.url)


def share_descriptions(state: SourceState, shared: dict[str, dict]) -> SourceState:
    """``state`` with its agency and converters held once for all states that have them.

    The driver holds a state for every archived document; thousands of them describe the
    same agency and the same converters.
    """
    for name in ("agency", "converters"):
        value = getattr(state, name)
        key = repr(sorted(value.items()))
        setattr(state, name, shared.setdefault(key, value))
    return state


def _negated(text: str) -> str:
    # Sort the latest fetch first with an ascending key.
    return "".join(chr(0x10FFFF - ord(c)) for c in text)


def reason_to_extract(
    listed: Listed,
    previous: SourceState | None,
    code: str,
    converters: Mapping[str, str],
) -> str | None:
    """Why a listed document must be extracted again, or None when its rows can be reused."""
    if previous is None:
        return REASON_NEW
    if previous.content != listed.content:
        return REASON_CHANGED
    if previous.code != code:
        return REASON_CODE
    if any(
        converters.get(name) != version for name, version in previous.converters.items()
    ):
        return REASON_CONVERTER
    return None


@dataclass
class Plan:
    """What an extract run will do before it reads any document."""

    extract: dict[str, str]  # url → reason
    reuse: list[str]
    gone: list[str]  # documents of the previous dataset that left the archive

    def reasons(self) -> dict[str, int]:
        """How many documents are extracted for each reason."""
        counts: dict[str, int] = defaultdict(int)
        for reason in self.extract.values():
            counts[reason] += 1
        return dict(counts)


def plan_extraction(
    listing: Iterable[Listed],
    previous: Mapping[str, SourceState],
    code: str,
    converters: Mapping[str, str],
    *,
    force_reason: str | None = None,
) -> Plan:
    """Decide, document by document, between extracting again and reusing the rows."""
    extract: dict[str, str] = {}
    reuse: list[str] = []
    seen = set()
    for listed in listing:
        seen.add(listed.url)
        reason = force_reason or reason_to_extract(
            listed, previous.get(listed.url), code, converters
        )
        if reason is None:
            reuse.append(listed.url)
        else:
            extract[listed.url] = reason
    gone = sorted(url for url in previous if url not in seen)
    return Plan(extract, reuse, gone)


def choose_primaries(
    states: Iterable[SourceState],
) -> dict[tuple[str, int], SourceState]:
    """The one document kept per agency and year (flags ``is_primary`` on every state)."""
    groups: dict[tuple[str, int], list[SourceState]] = defaultdict(list)
    for state in states:
        state.is_primary = False
        if state.key is not None:
            groups[state.key].append(state)
    primary = {
        key: min(members, key=SourceState.rank) for key, members in groups.items()
    }
    for state in primary.values():
        state.is_primary = True
    return primary


def rows_needed(
    primary: Mapping[tuple[str, int], SourceState],
    old_primary: Mapping[tuple[str, int], SourceState],
    extracted: set[str],
) -> list[str]:
    """Primaries whose rows are neither fresh nor in the previous dataset: extract them.

    This happens when a group's previous primary left the archive or lost its rank to a
    document that was reused (its rows were never written, since it was not primary).
    """
    return sorted(
        state.url
        for key, state in primary.items()
        if state.url not in extracted
        and not (
            key in old_primary
            and old_primary[key].url == state.url
            and old_primary[key].content == state.content
        )
    )


def keys_to_rewrite(
    primary: Mapping[tuple[str, int], SourceState],
    old_primary: Mapping[tuple[str, int], SourceState],
    extracted: set[str],
) -> set[tuple[str, int]]:
    """Agency-years whose rows change: re-extracted, new, re-chosen or gone."""
    changed = {
        key
        for key, state in primary.items()
        if state.url in extracted
        or key not in old_primary
        or old_primary[key].url != state.url
    }
    return changed | {key for key in old_primary if key not in primary}
