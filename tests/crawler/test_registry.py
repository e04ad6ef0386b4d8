"""The site registry: rows read into declarations, mistakes refused, ad hoc columns."""

from __future__ import annotations

import pytest

from crawler.cli import spider_names
from crawler.registry import (
    DeclarationError,
    Place,
    ad_hoc_site,
    declared_sites,
    load_sites,
    place_of_division,
    site_from_row,
)

ROW = {
    "division_code": "120105",
    "province": "天津市",
    "city": "天津市",
    "district": "河北区",
    "agency": "天津市河北区人民政府",
    "platform": "trs",
    "start_urls": ["http://www.tjhq.gov.cn/zwgk/{year}/"],
    "years": [2022, 2024],
}


def test_a_row_is_a_declaration():
    site = site_from_row("tianjin_hebei", ROW)
    assert site.place == Place("120105", "天津市", "天津市", "河北区")
    assert site.start_urls == tuple(
        f"http://www.tjhq.gov.cn/zwgk/{y}/" for y in (2022, 2023, 2024)
    )
    assert site.report_url_pattern.search("/zfxxgknb30/202401/t20240119_1.html")
    assert site.in_all


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"division_code": "1201"}, "6 digits"),
        ({"platform": "hanweb"}, "unknown platform"),
        ({"report_url_pattern": "(unclosed"}, "not a regular expression"),
        ({"start_urls": []}, "at least one URL"),
        ({"years": []}, "no years"),
        ({"colum_pattern": "x"}, "unknown key"),
    ],
)
def test_a_row_that_cannot_work_is_refused(change, message):
    with pytest.raises(DeclarationError, match=message):
        site_from_row("tianjin_hebei", {**ROW, **change})


def test_a_broken_registry_file_says_where(tmp_path):
    path = tmp_path / "sites.toml"
    path.write_text("[a\n", encoding="utf-8")
    with pytest.raises(DeclarationError, match="sites.toml"):
        load_sites(path)


def test_every_declared_site_is_a_spider_and_all_leaves_out_the_unknown_lists():
    sites = declared_sites()
    assert spider_names() == sorted(sites)
    assert spider_names(in_all=True) == sorted(n for n, s in sites.items() if s.in_all)
    for name, site in sites.items():
        assert site.place.province, name
        assert site.in_all or site.note, f"{name}: say why it is not in all"


def test_an_ad_hoc_column_takes_its_place_from_the_division_code():
    site = ad_hoc_site("http://www.tjnk.gov.cn/zwgk/zfxxgknb/", "120104")
    assert site.name == "column_tjnk"
    assert site.place == Place("120104", "天津市", "天津市", None)
    assert site.list_root == "http://www.tjnk.gov.cn/zwgk/zfxxgknb/"
    known = ad_hoc_site("https://www.bjxch.gov.cn/x/", "110102", name="xicheng_x")
    assert known.place == declared_sites()["beijing_xicheng"].place
    assert place_of_division("350102", "鼓楼区") == Place(
        "350102", "福建省", None, "鼓楼区"
    )
    with pytest.raises(DeclarationError, match="declared site"):
        ad_hoc_site("https://www.bjxch.gov.cn/x/", "110102", name="beijing_xicheng")
    with pytest.raises(DeclarationError, match="6 digits"):
        ad_hoc_site("https://www.bjxch.gov.cn/x/", "1101")
