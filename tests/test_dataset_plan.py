"""The extract run's decisions, as pure functions: no archive, no Parquet."""

from __future__ import annotations

import pytest

from extract.dataset.plan import (
    REASON_CHANGED,
    REASON_CODE,
    REASON_CONVERTER,
    REASON_NEW,
    Listed,
    SourceState,
    choose_primaries,
    content_digest,
    keys_to_rewrite,
    plan_extraction,
    rows_needed,
)

TESSERACT = {"tesseract": "tesseract 5.3.0; chi_sim True", "libreoffice": "absent"}


def state(url: str, *, content="c1", code="k1", converters=None, agency="a", year=2023,
          status="ok", fetched_at="2026-01-20T01:00:00Z", primary=True) -> SourceState:  # fmt: skip
    return SourceState(
        url=url, site="beijing_xicheng", content=content, code=code,
        converters=converters or {}, agency_id=agency, year=year, status=status,
        fetched_at=fetched_at, is_primary=primary,
    )  # fmt: skip


def listed(url: str, content: str = "c1") -> Listed:
    return Listed(url, "beijing_xicheng", content, "2026-01-20T01:00:00Z")


def test_content_digest_changes_with_an_attachment_only():
    page = "a" * 64
    base = content_digest(page, [("https://x.gov.cn/a.pdf", "b" * 64)])
    assert base == content_digest(page, [("https://x.gov.cn/a.pdf", "b" * 64)])
    assert base != content_digest(page, [("https://x.gov.cn/a.pdf", "c" * 64)])
    assert base != content_digest(page, [])


@pytest.mark.parametrize(
    ("previous", "listing", "expected"),
    [
        (None, listed("u"), REASON_NEW),
        (state("u"), listed("u", content="c2"), REASON_CHANGED),
        (state("u", code="k0"), listed("u"), REASON_CODE),
        # A PDF read while Tesseract was absent is read again once it is installed.
        (state("u", converters={"tesseract": "absent"}), listed("u"), REASON_CONVERTER),
        (
            state("u", converters={"tesseract": TESSERACT["tesseract"]}),
            listed("u"),
            None,
        ),
        # An HTML page needs no converter: installing one changes nothing for it.
        (state("u"), listed("u"), None),
    ],
)
def test_why_a_document_is_extracted_again(previous, listing, expected):
    plan = plan_extraction(
        [listing], {"u": previous} if previous else {}, "k1", TESSERACT
    )
    assert plan.extract == ({"u": expected} if expected else {})
    assert plan.reuse == ([] if expected else ["u"])


def test_a_forced_run_extracts_everything_and_documents_that_left_are_gone():
    previous = {"u": state("u"), "gone": state("gone", agency="b")}
    plan = plan_extraction([listed("u")], previous, "k1", {}, force_reason="--all")
    assert plan.extract == {"u": "--all"} and plan.gone == ["gone"]
    assert plan.reasons() == {"--all": 1}


def test_the_best_document_is_primary_by_status_then_latest_fetch():
    older = state("older", fetched_at="2026-01-01T00:00:00Z")
    newer = state("newer", fetched_at="2026-02-01T00:00:00Z")
    partial = state("partial", status="partial", fetched_at="2026-03-01T00:00:00Z")
    failed = state("failed", status="timeout", fetched_at="2026-04-01T00:00:00Z")
    nameless = state("nameless", agency=None)
    primary = choose_primaries([older, newer, partial, failed, nameless])
    assert {key: s.url for key, s in primary.items()} == {("a", 2023): "newer"}
    assert [s.is_primary for s in (older, newer, partial, failed, nameless)] == [
        False, True, False, False, False,
    ]  # fmt: skip


def test_rows_are_needed_for_a_primary_whose_rows_were_never_written():
    # The re-hosted copy was reused but never primary; the original left the archive.
    copy = state("copy", primary=False)
    old_primary = {("a", 2023): state("original")}
    primary = choose_primaries([copy])
    assert rows_needed(primary, old_primary, extracted=set()) == ["copy"]
    assert keys_to_rewrite(primary, old_primary, extracted={"copy"}) == {("a", 2023)}


def test_only_changed_agency_years_are_rewritten():
    kept, changed, gone = (
        state("kept"),
        state("changed", agency="b"),
        state("gone", agency="c"),
    )
    old_primary = {s.key: s for s in (kept, changed, gone)}
    primary = choose_primaries([state("kept"), state("changed", agency="b")])
    rewrite = keys_to_rewrite(primary, old_primary, extracted={"changed"})
    assert rewrite == {("b", 2023), ("c", 2023)}
    assert rows_needed(primary, old_primary, extracted={"changed"}) == []
