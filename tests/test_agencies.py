"""Agency names as sites and reports print them → one stable id."""

from __future__ import annotations

import re

import pytest

from extract.agencies import Place, agency_kind, identify


@pytest.mark.parametrize(
    ("printed", "site_district", "name", "district", "code"),
    [
        (
            "西城区对外联络服务办公室",
            "西城区",
            "北京市西城区对外联络服务办公室",
            "西城区",
            "110102",
        ),
        (
            "北京市西城区对外联络服务办公室",
            None,
            "北京市西城区对外联络服务办公室",
            "西城区",
            "110102",
        ),
        (
            "金融街街道办事处",
            "西城区",
            "北京市西城区金融街街道办事处",
            "西城区",
            "110102",
        ),
        ("北京市海淀区人民政府", None, "北京市海淀区人民政府", "海淀区", "110108"),
        ("北京市人民政府办公厅", None, "北京市人民政府办公厅", None, "110000"),
        ("北京市 密云区 统计局", "密云区", "北京市密云区统计局", "密云区", "110118"),
        ("上海市人民政府办公厅", None, "上海市人民政府办公厅", None, None),
    ],
)
def test_names_are_completed_with_city_and_district(
    printed, site_district, name, district, code
):
    agency = identify(printed, site_district)
    assert (agency.name, agency.district, agency.division_code) == (
        name,
        district,
        code,
    )
    assert re.fullmatch(r"[0-9x]+-[a-z0-9]+-[0-9a-f]{6}", agency.agency_id)


def test_one_agency_one_id_across_sites_and_spellings():
    ids = {
        identify("西城区对外联络服务办公室", "西城区").agency_id,
        identify("北京市西城区对外联络服务办公室").agency_id,
        identify("北京市西城区对外联络服务办公室", "东城区").agency_id,
    }
    assert len(ids) == 1
    assert (
        identify("金融街街道办事处", "西城区").agency_id
        != identify("金融街街道办事处", "东城区").agency_id
    )


def test_the_place_of_the_site_completes_bare_names_in_any_province():
    pingtan = Place("350128", "福建省", "福州市", "平潭综合实验区")
    assert identify("财政金融局", pingtan).name == "平潭综合实验区财政金融局"
    assert identify("财政金融局", pingtan).division_code == "350128"
    hebei = Place("120105", "天津市", "天津市", "河北区")
    assert identify("政务服务办公室", hebei).name == "天津市河北区政务服务办公室"
    assert identify("沈阳市和平区财政局").district is None
    xicheng = Place("110102", "北京市", "北京市", "西城区")
    assert identify("金融街街道办事处", xicheng) == identify(
        "金融街街道办事处", "西城区"
    )


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("北京市东城区人民政府", "government"),
        ("淮安市人民政府", "government"),
        ("北京市东城区人民政府办公室", "general_office"),
        ("北京市海淀区政府本级", "general_office"),
        ("北京市西城区金融街街道办事处", "street"),
        ("北京市东城区体育馆路街道", "street"),
        ("北京市密云区大城子镇人民政府", "township"),
        ("北京市朝阳区南磨房乡人民政府", "township"),
        ("北京市西城区财政局", "department"),
        ("北京市西城区发展和改革委员会", "department"),
        ("北京市东城区卫生健康委", "department"),
        ("北京市西城区对外联络服务办公室", "department"),
        ("北京经济技术开发区管理委员会", "other"),
        ("北京市西城区人民法院", None),  # a court is not an administrative agency
        ("", None),
    ],
)
def test_agency_kind_by_the_first_matching_rule(name, kind):
    assert agency_kind(name) == kind
