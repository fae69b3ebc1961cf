"""Names checklist: every input format, exact/fuzzy/not-found lookups and clear errors."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

import pytest

from herbdesk.quality import checklist as checklist_mod
from herbdesk.quality.checklist import Checklist, ChecklistError, NameMatch, name_key

NAMES = [
    "Coreopsis tinctoria Nutt.",
    "Coreopsis lanceolata L.",
    "Helianthus annuus L.",
    "Helianthus petiolaris Nutt.",
    "Mentha × piperita L.",
    "Aster amellus subsp. bessarabicus (Bernh. ex Rchb.) Soó",
    "Quercus robur L.",
]

META_XML = """<?xml version="1.0" encoding="UTF-8"?>
<archive xmlns="http://rs.tdwg.org/dwc/text/">
  <core encoding="UTF-8" fieldsTerminatedBy="\\t" linesTerminatedBy="\\n" fieldsEnclosedBy=""
        ignoreHeaderLines="1" rowType="http://rs.tdwg.org/dwc/terms/Taxon">
    <files><location>taxon.txt</location></files>
    <id index="0"/>
    <field index="1" term="http://rs.tdwg.org/dwc/terms/scientificName"/>
    <field index="2" term="http://rs.tdwg.org/dwc/terms/scientificNameAuthorship"/>
    <field index="3" term="http://rs.tdwg.org/dwc/terms/taxonRank"/>
  </core>
</archive>
"""


@pytest.fixture(autouse=True)
def _temp_inside_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The DwC-A reader extracts into a temporary directory: keep it inside tmp_path."""
    scratch = tmp_path / "_tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))


def _text_list(tmp_path: Path) -> Path:
    p = tmp_path / "names.txt"
    p.write_text("# a comment\n\n" + "\n".join(NAMES) + "\n   \n# end\n", encoding="utf-8")
    return p


def _check_basic(cl: Checklist) -> None:
    assert cl.match("Coreopsis tinctoria") == NameMatch("matched", "Coreopsis tinctoria", 100.0)
    m = cl.match("Coreopsis tinctorie")
    assert (m.status, m.name) == ("fuzzy", "Coreopsis tinctoria") and m.score >= 90
    assert cl.match("Zzyzx nonexistens").status == "not_found"


# ---------------------------------------------------------------------- formats


def test_plain_text_list(tmp_path: Path) -> None:
    cl = Checklist.load(_text_list(tmp_path))
    assert len(cl) == len(NAMES)
    assert cl.source_format == "text list"
    _check_basic(cl)


def test_format_comes_from_content_not_extension(tmp_path: Path) -> None:
    p = tmp_path / "list.dat"
    p.write_text("scientificName,taxonRank\nCoreopsis tinctoria Nutt.,species\n")
    assert Checklist.load(p).source_format == "CSV/TSV"
    q = tmp_path / "names.csv"
    q.write_text("Coreopsis tinctoria Nutt.\nQuercus robur L.\n")
    with pytest.raises(ChecklistError, match="scientificName"):
        Checklist.load(q)  # .csv but no header: says what is missing
    r = tmp_path / "archive.bin"
    _write_dwca(r)
    assert Checklist.load(r).source_format == "Darwin Core Archive"


@pytest.mark.parametrize("header", ["scientificName", "SCIENTIFICNAME", "dwc:scientificName"])
def test_csv_with_scientific_name_column(tmp_path: Path, header: str) -> None:
    p = tmp_path / "names.csv"
    rows = [f"taxonID,{header},taxonRank"]
    rows += [f'{i},"{n}",species' for i, n in enumerate(NAMES)]
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    cl = Checklist.load(p)
    assert len(cl) == len(NAMES)
    _check_basic(cl)


def test_tsv_with_separate_authorship(tmp_path: Path) -> None:
    p = tmp_path / "names.tsv"
    p.write_text(
        "taxonID\tscientificName\tscientificNameAuthorship\n"
        "1\tHelianthus annuus L.\tL.\n2\tCoreopsis tinctoria\tNutt.\n",
        encoding="utf-8",
    )
    cl = Checklist.load(p)
    assert len(cl) == 2
    assert cl.match("Helianthus annuus").status == "matched"
    _check_basic(cl)


def _write_dwca(path: Path, meta: str = META_XML) -> None:
    rows = ["taxonID\tscientificName\tscientificNameAuthorship\ttaxonRank"]
    for i, n in enumerate(NAMES):
        rows.append(f"{i}\t{n}\t\tspecies")
    rows.append("99\tHelianthus giganteus L.\tL.\tspecies")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("meta.xml", meta)
        zf.writestr("taxon.txt", "\n".join(rows) + "\n")


def test_darwin_core_archive_through_the_library(tmp_path: Path) -> None:
    p = tmp_path / "checklist-dwca.zip"
    _write_dwca(p)
    cl = Checklist.load(p)
    assert cl.source_format == "Darwin Core Archive"
    assert len(cl) == len(NAMES) + 1
    _check_basic(cl)
    assert cl.match("Helianthus giganteus").status == "matched"
    assert list((tmp_path / "_tmp").iterdir()) == []  # extraction directory removed


def test_dwca_without_scientific_name_term(tmp_path: Path) -> None:
    p = tmp_path / "bad-dwca.zip"
    _write_dwca(p, META_XML.replace('dwc/terms/scientificName"', 'dwc/terms/vernacularName"'))
    with pytest.raises(ChecklistError, match="scientificName"):
        Checklist.load(p)
    assert list((tmp_path / "_tmp").iterdir()) == []


def test_coldp_name_usage_file(tmp_path: Path) -> None:
    p = tmp_path / "NameUsage.tsv"
    rows = ["col:ID\tcol:status\tcol:rank\tcol:scientificName\tcol:authorship"]
    rows += ["1\taccepted\tspecies\tCoreopsis tinctoria\tNutt."]
    rows += ["2\taccepted\tspecies\tHelianthus annuus\tL."]
    rows += ['3\tsynonym\tspecies\tCoreopsis "bicolor"\t']  # TSV: a quote is just a character
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    cl = Checklist.load(p)
    assert cl.source_format == "COLDP table"
    assert len(cl) == 3
    _check_basic(cl)


@pytest.mark.parametrize("member", ["NameUsage.tsv", "data/Name.tsv"])
def test_coldp_zip(tmp_path: Path, member: str) -> None:
    p = tmp_path / "coldp.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("metadata.yaml", "title: test\n")
        zf.writestr(
            member,
            "ID\tscientificName\tauthorship\trank\n"
            "1\tCoreopsis tinctoria\tNutt.\tspecies\n2\tHelianthus annuus\tL.\tspecies\n",
        )
    cl = Checklist.load(p)
    assert cl.source_format == "COLDP archive"
    assert len(cl) == 2
    _check_basic(cl)


# ---------------------------------------------------------------------- matching


def test_authorship_insensitive_both_ways(tmp_path: Path) -> None:
    cl = Checklist.load(_text_list(tmp_path))
    assert cl.match("Coreopsis tinctoria Nutt.").status == "matched"
    assert cl.match("Quercus robur").status == "matched"
    assert cl.match("Quercus robur (L.) Someone").name == "Quercus robur"
    assert cl.match("HELIANTHUS ANNUUS L.") == NameMatch("matched", "Helianthus annuus", 100.0)
    assert name_key("Coreopsis  tinctoria   Nutt.") == name_key("coreopsis tinctoria")


def test_hybrid_sign_and_rank_markers(tmp_path: Path) -> None:
    cl = Checklist.load(_text_list(tmp_path))
    for q in ("Mentha × piperita", "Mentha x piperita", "Mentha ×piperita", "Mentha piperita"):
        assert cl.match(q) == NameMatch("matched", "Mentha × piperita", 100.0), q
    m = cl.match("Aster amellus ssp. bessarabicus")
    assert m == NameMatch("matched", "Aster amellus subsp. bessarabicus", 100.0)


def test_fuzzy_suggestions(tmp_path: Path) -> None:
    cl = Checklist.load(_text_list(tmp_path))
    m = cl.match("Helianthus anuus")
    assert (m.status, m.name) == ("fuzzy", "Helianthus annuus") and m.score >= 90
    m = cl.match("Helianthos annuus")  # genus misread
    assert (m.status, m.name) == ("fuzzy", "Helianthus annuus") and m.score >= 90
    m = cl.match("Coreopsis tinctoria,")  # OCR punctuation
    assert m.status == "matched"


def test_not_found(tmp_path: Path) -> None:
    cl = Checklist.load(_text_list(tmp_path))
    assert cl.match("Helianthus tuberosus") == NameMatch("not_found", None, 0.0)
    assert cl.match("Pinus sylvestris").status == "not_found"
    assert cl.match("").status == "not_found"
    assert cl.match("12345").status == "not_found"


def test_cutoff_is_configurable(tmp_path: Path) -> None:
    strict = Checklist.load(_text_list(tmp_path), score_cutoff=99)
    assert strict.match("Coreopsis tinctorie").status == "not_found"
    loose = Checklist(NAMES, score_cutoff=80)
    assert loose.match("Coreopsis tinktorie").name == "Coreopsis tinctoria"


def test_big_genus_uses_epithet_blocks() -> None:
    """A genus over SMALL_GENUS names is searched through epithet blocks; misreads at the
    start, middle and end of an epithet are all still found."""
    syll = ["ba", "ce", "di", "fo", "gu", "la", "me", "ni", "po", "ru"]
    eps = [a + b + c + "ensis" for a in syll for b in syll for c in syll[:4]]
    assert len(eps) > checklist_mod.SMALL_GENUS
    cl = Checklist([f"Carex {e}" for e in eps] + ["Carex tinctoria"])
    for q in ("Carex tintoria", "Carex tinctorja", "Carex xinctoria", "Carex tinctoriaa"):
        m = cl.match(q)
        assert (m.status, m.name) == ("fuzzy", "Carex tinctoria"), q
    assert cl.match("Carex qqqqqqqqqq").status == "not_found"


# ---------------------------------------------------------------------- bad input


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.txt"
    p.write_bytes(b"")
    with pytest.raises(ChecklistError, match="empty"):
        Checklist.load(p)
    p.write_text("# only a comment\n\n")
    with pytest.raises(ChecklistError, match="no scientific names"):
        Checklist.load(p)


def test_csv_without_scientific_name_column(tmp_path: Path) -> None:
    p = tmp_path / "taxa.csv"
    p.write_text("taxonID,vernacularName\n1,tickseed\n")
    with pytest.raises(ChecklistError, match=r"no scientificName column.*vernacularName"):
        Checklist.load(p)


def test_binary_file(tmp_path: Path) -> None:
    p = tmp_path / "image.txt"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(ChecklistError, match="binary"):
        Checklist.load(p)


def test_non_utf8_file(tmp_path: Path) -> None:
    p = tmp_path / "latin1.txt"
    p.write_bytes("Aster amellus subsp. bessarabicus Soó\n".encode("latin-1"))
    with pytest.raises(ChecklistError, match="UTF-8"):
        Checklist.load(p)


def test_zip_that_is_no_checklist(tmp_path: Path) -> None:
    p = tmp_path / "other.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("a.txt", "x")
        zf.writestr("b.txt", "y")
    with pytest.raises(ChecklistError, match="Darwin Core Archive"):
        Checklist.load(p)
    assert list((tmp_path / "_tmp").iterdir()) == []


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ChecklistError, match="cannot read"):
        Checklist.load(tmp_path / "nope.txt")
    assert issubclass(ChecklistError, ValueError)


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("Setaria viridis (L.) Beauv.", ("Setaria viridis", "(L.) Beauv.")),
        ("Coreopsis tinctorie Nutt.", ("Coreopsis tinctorie", "Nutt.")),
        ("Carex aurea", ("Carex aurea", "")),
        ("Carex, aurea Nutt.", ("Carex aurea", "Nutt.")),  # OCR's stray comma
        ("Salix × rubens Schrank", ("Salix × rubens", "Schrank")),
        ("Poa pratensis var. angusta (L.) Lej.", ("Poa pratensis var. angusta", "(L.) Lej.")),
        ("1961", ("", "1961")),
    ],
)  # fmt: skip
def test_split_authorship_keeps_the_rest_as_written(name: str, parts: tuple[str, str]) -> None:
    from herbdesk.quality.checklist import split_authorship

    assert split_authorship(name) == parts
