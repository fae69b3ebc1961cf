"""The label rules, on hand-written OCR-like lines: clean, noisy, and ones that must not match."""

from __future__ import annotations

import pytest

from herbdesk.common.dwc import DWC_TERM_SET
from herbdesk.extraction.dwc_parser import Line, normalise, parse_date, parse_label
from herbdesk.extraction.engines.base import FieldValue


def parse(*lines: str, score: float = 0.9) -> dict[str, str]:
    """Term -> value for lines all read with one OCR score."""
    return {k: v.value for k, v in parse_label([(t, score) for t in lines]).items()}


# What RapidOCR read from specimen_001.jpg, sic.
SHEET_001 = [
    "calibrite",
    "colorchecker cLASSIC",
    "REGINA RESEARCH STATION",
    "AGRICULTURE CANADA",
    "REGINA, SASKATCHEWAN",
    "Pathogen..C.olletotruchwmv.",
    "[Host..Malve..ratu",
    "Disease Symptom..e.i.n..",
    "Location.Swift.Coent..Reoewch.St",
    "Habitat.edas..e.gasden..pleta...",
    "Date..S.ept.8.l984......... Collector.M.",
    "Pathogen Identified by....Malley",
    "Host Identified by.....Molley",
    "84-24",
]


# -- clean-up --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Date..S.ept.8.l984......... Collector.M.", "Date Sept.8.l984 Collector M."),
        ("[Host..Malve..ratu", "Host Malve ratu"),
        ("|Date Sept 18, 1984", "Date Sept 18, 1984"),
        ("jLocation..Swift Current", "Location Swift Current"),
        ("Collector. . Thomas . ..Date .Aug. 22, 1985", "Collector Thomas Date Aug. 22, 1985"),
        ("Locality .Texas Creęk, .B:C.", "Locality Texas Creek, B:C."),
        ("Collector.M.Molley", "Collector M. Molley"),
        ("Agropyron cristatum(L) Gaertn.", "Agropyron cristatum (L) Gaertn."),
        ("」", ""),
    ],
)
def test_normalise_removes_leaders_junk_and_accents(raw: str, clean: str) -> None:
    assert normalise(raw) == clean


# -- dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("Sept. 8 1984", "1984-09-08"),
        ("Sept.8.l984", "1984-09-08"),  # l read for 1
        ("Aug. 22, 1985", "1985-08-22"),
        ("Nov.4,1962", "1962-11-04"),
        ("8 Sep 1984", "1984-09-08"),
        ("8-Sept-1984", "1984-09-08"),
        ("1984-09-08", "1984-09-08"),
        ("8.IX.1984", "1984-09-08"),
        ("8 ix 1984", "1984-09-08"),
        ("22 juillet 1950", "1950-07-22"),
        ("20/06/47", "1947-06-20"),
        ("06/20/1947", "1947-06-20"),
        ("Aug. 1985", "1985-08"),
        ("Au9 13, 1987", "1987-08-13"),  # OCR 9 for g
        ("Ayg. 22, 1985", "1985-08-22"),  # one OCR slip in the month
    ],
)
def test_parse_date_normalises_to_iso(text: str, iso: str) -> None:
    found = parse_date(text)
    assert found is not None and found[0] == iso


@pytest.mark.parametrize(
    "text",
    [
        "05/06/1947",
        "31 Feb 1984",
        "Sept 8 2999",
        "RM 156 18NW-17-12-W2",
        "Coll. No. 22",
        "Sept 181.1924",
        "Colour 12 1990",
        "8 Sep 1492",
        "03/04/05",
    ],
)
def test_parse_date_rejects_ambiguous_impossible_and_non_dates(text: str) -> None:
    assert parse_date(text) is None


def test_date_trust_drops_for_guessed_month_and_century() -> None:
    exact, slip, short = (
        parse_date("Aug 13, 1987"),
        parse_date("Au9 13, 1987"),
        parse_date("13/08/87"),
    )
    assert exact and slip and short
    assert exact[1] == 1.0 and slip[1] < 1.0 and short[1] < 1.0


def test_event_date_and_date_identified_come_from_their_captions() -> None:
    got = parse("Date..Sept. 8 1984", "Det. J. Smith 1990-05-02")
    assert got["eventDate"] == "1984-09-08"
    assert got["dateIdentified"] == "1990-05-02"
    assert got["identifiedBy"] == "J. Smith"


def test_a_date_on_its_own_is_an_event_date_with_less_confidence() -> None:
    alone = parse_label([("12 July 1978", 0.9)])["eventDate"]
    captioned = parse_label([("Date: 12 July 1978", 0.9)])["eventDate"]
    assert alone.value == captioned.value == "1978-07-12"
    assert (alone.confidence or 1) < (captioned.confidence or 0)
    assert "eventDate" not in parse("Aug. 1985")  # month and year alone: too vague


def test_annotation_and_determination_dates_are_not_event_dates() -> None:
    got = parse("Annotated by K. Lee 12 May 2001", "Det. W. A. Weber 1979")
    assert "eventDate" not in got
    assert got["dateIdentified"] == "1979" and got["identifiedBy"] == "W. A. Weber"


def test_collector_line_with_number_date_and_companions() -> None:
    got = parse("Coll. J. A. Smith 1234, 12 July 1978")
    assert got["recordedBy"] == "J. A. Smith" and got["recordNumber"] == "1234"
    assert got["eventDate"] == "1978-07-12"
    got = parse("Collector: Dorothy Richman Wade & Douglas E. Wade")
    assert got["recordedBy"] == "Dorothy Richman Wade | Douglas E. Wade"


# -- people and numbers ----------------------------------------------------------------------


def test_collector_and_number() -> None:
    got = parse("Collector: J. Smith No. 123")
    assert got["recordedBy"] == "J. Smith" and got["recordNumber"] == "123"
    got = parse("Collector. . Thomas . ..Date .Aug. 22, 1985", "Coll. No.1073b.Checked by Auser")
    assert got["recordedBy"] == "Thomas" and got["recordNumber"] == "1073b"
    assert got["eventDate"] == "1985-08-22"
    assert "identifiedBy" not in got  # "Checked by" is not a determination
    assert parse("Leg. A. B. Jones #45")["recordedBy"] == "A. B. Jones"
    assert parse("Collector.M.Molley")["recordedBy"] == "M. Molley"
    assert parse("Collector MMolley")["recordedBy"] == "M. Molley"


def test_garbled_captions_are_still_recognised() -> None:
    got = parse("Date Aug 13,1987 follector K. Mortensen", "Colltctor R. Baker")
    assert got["eventDate"] == "1987-08-13"
    assert got["recordedBy"] in ("K. Mortensen", "R. Baker")
    assert parse("llabitat. winter wheat field")["habitat"] == "winter wheat field"
    assert parse("Loca'in Swift Current Station")["locality"] == "Swift Current Station"
    assert parse("Hort Malva rotundifolia")["scientificName"] == "Malva rotundifolia"


@pytest.mark.parametrize(
    "line",
    [
        "Collector ......... Date 20/06/47",
        "Collector: 12345",
        "Collector.M.",
        "Collector: seorge hedingham",
        "Collector: ~~K%",
    ],
)
def test_no_collector_from_empty_or_non_name_values(line: str) -> None:
    assert "recordedBy" not in parse(line)


def test_on_a_pathogen_sheet_the_pathogens_identifier_is_identified_by() -> None:
    got = parse(
        "Pathogen..Puccinia graminis",
        "Pathogen Identified by....J. Smith",
        "Host Identified by.....R. Baker",
    )
    assert got["identifiedBy"] == "J. Smith"  # the specimen is the pathogen
    assert parse("Pathogen Identified by M. Malley")["identifiedBy"] == "M. Malley"
    got = parse("det. by seorge hedingham Nov. 4, 1962")
    assert got["dateIdentified"] == "1962-11-04"
    assert "identifiedBy" not in got  # a lower-case "name" is OCR noise, not a person


# -- places ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "country", "province"),
    [
        ("Locality .Texas Creęk, .B:C.", None, None),  # "B:C." is not B.C.; Texas is a creek
        ("Locality .Texas Creek, B.C.", "Canada", "British Columbia"),
        ("Location...Regina Sask Research Station", "Canada", "Saskatchewan"),
        ("Locality: RM 156 18NW-17-12-W2, Sask.", "Canada", "Saskatchewan"),
        ("Location Swift Current Soskotchewan", "Canada", "Saskatchewan"),  # OCR slips
        ("Locality: 5 mi N of Ames, Iowa", "United States", "Iowa"),
        ("Loc.: near Oaxaca, Mexico", "Mexico", "Oaxaca"),
        ("PLANTS OF SASKATCHEWAN", "Canada", "Saskatchewan"),
        ("Lake shore, Alberta", "Canada", "Alberta"),
    ],
)
def test_country_and_province(line: str, country: str | None, province: str | None) -> None:
    got = parse(line)
    assert got.get("country") == country
    assert got.get("stateProvince") == province


def test_institution_address_is_only_a_weak_last_resort_for_the_province() -> None:
    header = ("REGINA RESEARCH STATION", "AGRICULTURE CANADA", "REGINA, SASKATCHEWAN")
    alone = parse_label([(t, 1.0) for t in header])
    assert alone["stateProvince"].value == "Saskatchewan"
    assert (alone["stateProvince"].confidence or 1) < 0.5
    assert alone["country"].value == "Canada"
    # The label's own place wins over the station's address.
    got = parse(*header, "Locality Kamloops, B.C.")
    assert got["stateProvince"] == "British Columbia"
    assert "stateProvince" not in parse("Collector: J. Washington")


def test_locality_and_habitat() -> None:
    got = parse("Loc.: 3 km E of Regina", "Habitat: dry hillside")
    assert got["locality"] == "3 km E of Regina" and got["habitat"] == "dry hillside"
    assert parse("Location.Swift.Current..Research.St")["locality"] == "Swift Current Research St"
    got = parse("Habitat beside 3-72.te.se", "Location ~€≤ 3x%")
    assert "habitat" not in got and "locality" not in got


# -- coordinates and elevation ---------------------------------------------------------------


def test_dms_coordinates() -> None:
    got = parse("49°30'15\"N 104°20'W")
    assert float(got["decimalLatitude"]) == pytest.approx(49.504167, abs=1e-5)
    assert float(got["decimalLongitude"]) == pytest.approx(-104.333333, abs=1e-5)
    assert got["verbatimCoordinates"] == "49°30'15\"N 104°20'W"
    assert "minimumElevationInMeters" not in got  # 20' here is minutes, not feet


def test_decimal_coordinates() -> None:
    got = parse("Lat. 49.5 N Long. 104.25 W")
    assert (got["decimalLatitude"], got["decimalLongitude"]) == ("49.5", "-104.25")
    got = parse("Coordinates: 50.4452, -104.6189")
    assert (got["decimalLatitude"], got["decimalLongitude"]) == ("50.4452", "-104.6189")


@pytest.mark.parametrize("line", ["Coll. 0.5 1.25", "95°N 10°E", "Lat. 123.5 N 10.5 E"])
def test_no_coordinates_from_bare_or_impossible_numbers(line: str) -> None:
    assert "decimalLatitude" not in parse(line)


@pytest.mark.parametrize(
    ("line", "metres", "verbatim"),
    [
        ("Elev. 1200 m", "1200", "1200 m"),
        ("3500 ft", "1067", "3500 ft"),
        ("Alt.: 1,200-1,500 m", "1200", "1,200-1,500 m"),
        ("Habitat . 2500'.", "762", "2500'"),
        ("1400 m a.s.l.", "1400", "1400 m a.s.l."),
    ],
)
def test_elevation_in_metres_and_as_written(line: str, metres: str, verbatim: str) -> None:
    got = parse(line)
    assert got["minimumElevationInMeters"] == metres
    assert got["verbatimElevation"] == verbatim


def test_elevation_only_habitat_is_not_a_habitat() -> None:
    assert "habitat" not in parse("Habitat . 2500'.")


@pytest.mark.parametrize(
    "line",
    ["500 m N of road", "Locality: 49° 30' N", "Habitat: 12' high", "Elevation: 850"],
)
def test_no_elevation_from_distances_minutes_or_unknown_units(line: str) -> None:
    assert "minimumElevationInMeters" not in parse(line)


# -- names of plants -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("Botanical Name . Hieracium umbellatum L.", "Hieracium umbellatum L."),
        ("Botanical Name Hieracium umbellatum L", "Hieracium umbellatum L."),
        ("Botanical Name. Setaria viridis (L.) Beauv.", "Setaria viridis (L.) Beauv."),
        ("Host..Malva rotundifolia", "Malva rotundifolia"),
        ("Host Portulaca oleracea Purslane", "Portulaca oleracea"),  # common name, no author
        ("Poaceae Setaria viridis (L.) Beauv.", "Setaria viridis (L.) Beauv."),
        ("Agropyron cristatum(L) Gaertn.", "Agropyron cristatum (L.) Gaertn."),
        (
            "Scientific name: Achillea millefolium var. lanulosa",
            "Achillea millefolium var. lanulosa",
        ),
    ],
)
def test_scientific_name(line: str, name: str) -> None:
    assert parse(line)["scientificName"] == name


@pytest.mark.parametrize(
    "line",
    [
        "Open area near road",
        "Regina Waterfowl Park",
        "Common Name Narrow-leaved Hawkweed",
        "Host Identified by M. Molloy",
        "[Host..Malve..ratu",
        "Dorothy Richman Wade",
        "Poaceae",
    ],
)
def test_no_scientific_name_from_ordinary_words(line: str) -> None:
    assert "scientificName" not in parse(line)


def test_on_a_pathogen_sheet_the_pathogen_is_the_specimen_and_the_host_associated() -> None:
    got = parse("Pathogen..Colletotrichum gloeosporioides", "Host..Malva rotundifolia")
    assert got["scientificName"] == "Colletotrichum gloeosporioides"
    assert got["associatedTaxa"] == "host: Malva rotundifolia"
    # Without a pathogen caption the host line names the plant itself.
    assert parse("Host..Malva rotundifolia")["scientificName"] == "Malva rotundifolia"


# -- institution and catalogue ---------------------------------------------------------------


def test_institution_codes() -> None:
    assert parse("AGRICULTURE CANADA (DAS)")["institutionCode"] == "DAS"
    assert parse("DAO HERBARIUM")["institutionCode"] == "DAO"
    assert parse("AGRICULTURE CANADA")["institutionCode"] == "Agriculture Canada"
    assert "institutionCode" not in parse("Setaria viridis (L.) Beauv.", "Wade (DW)")


def test_catalogue_numbers() -> None:
    got = parse("AGRICULTURE CANADA (DAS)", "Number..019008")
    assert got["catalogNumber"] == "019008" and "recordNumber" not in got
    got = parse("DAOM 12345")
    assert got["catalogNumber"] == "DAOM 12345" and got["collectionCode"] == "DAOM"
    assert parse("AGRICULTURE CANADA", "84-24")["catalogNumber"] == "84-24"  # on the stamp
    assert parse("Habitat dry slope", "84-24")["recordNumber"] == "84-24"  # under the label
    assert parse("Number 22")["recordNumber"] == "22"  # no stamp above: the collector's number
    assert "catalogNumber" not in parse("Douglas E. Wade C-451")
    assert "catalogNumber" not in parse("RM 156")


# -- the whole label -------------------------------------------------------------------------


def test_sheet_001_as_read() -> None:
    got = parse_label([(t, 0.9) for t in SHEET_001])
    assert got["eventDate"].value == "1984-09-08"
    assert got["identifiedBy"].value in ("Malley", "Molley")  # one person, read twice
    assert got["recordNumber"].value == "84-24"
    assert got["locality"].value == "Swift Coent Reoewch St"
    assert got["institutionCode"].value == "Agriculture Canada"
    assert got["basisOfRecord"] == FieldValue("PreservedSpecimen", 0.5)
    # Only the station's address names a province: kept, but as the weakest of guesses.
    assert (got["stateProvince"].confidence or 1) < 0.5
    assert "recordedBy" not in got  # "Collector.M." is an initial only
    assert "scientificName" not in got  # "Malve ratu" is not a Latin binomial
    assert set(got) <= DWC_TERM_SET


def test_confidence_follows_the_ocr_score_and_stays_in_range() -> None:
    line = "Botanical Name . Hieracium umbellatum L."
    sure = parse_label([(line, 1.0)])["scientificName"].confidence
    unsure = parse_label([(line, 0.5)])["scientificName"].confidence
    over = parse_label([(line, 7.0)])["scientificName"].confidence
    assert sure is not None and unsure is not None and over is not None
    assert unsure < sure <= 1.0 and over <= 1.0 and unsure > 0


def test_basis_of_record_only_alongside_a_finding() -> None:
    assert parse_label([]) == {}
    assert parse_label([("calibrite", 1.0), ("!!!", 0.9), ("", 0.5)]) == {}
    got = parse_label([("Elev. 1200 m", 0.9)])
    assert got["basisOfRecord"].value == "PreservedSpecimen"
    assert got["basisOfRecord"].confidence == 0.5  # inferred, so below what was read
    assert (got["minimumElevationInMeters"].confidence or 0) > 0.5


# -- label structure (invented labels in the styles of a Canadian agricultural herbarium) ------


def test_plants_of_header_and_uncaptioned_collector_line() -> None:
    got = parse(
        "PLANTS OF MANITOBA",
        "Bromus inermis Leyss.",
        "Assiniboine Park, Winnipeg",
        "Helen M. Fraser",
        "Arthur B. FraserK-1207 July 3, 1958",
    )
    assert got["stateProvince"] == "Manitoba" and got["country"] == "Canada"
    assert got["scientificName"] == "Bromus inermis Leyss."
    assert got["recordedBy"] == "Helen M. Fraser | Arthur B. Fraser"
    assert got["recordNumber"] == "K-1207" and got["eventDate"] == "1958-07-03"
    assert got["locality"] == "Assiniboine Park, Winnipeg"


def test_agriculture_canada_pathogen_sheet() -> None:
    got = parse(
        "LETHBRIDGE RESEARCH STATION",
        "AGRICULTURE CANADA",
        "LETHBRIDGE, ALBERTA",
        "Pathogen...Puccinia coronata",
        "Host...Avena sativa",
        "Disease Symptom...rust pustules",
        "Locatiom...Milk River, Alta.",
        "Date...JUL 20 1961....... Collectr...R. Halvorsen",
        "Pathogen Identified by...R. Halvorson",
        "Host Identified by....R. Halvorsen",
        "61-112",
    )
    assert got["scientificName"] == "Puccinia coronata"
    assert got["associatedTaxa"] == "host: Avena sativa"
    assert got["eventDate"] == "1961-07-20"
    assert got["locality"] == "Milk River, Alta."
    assert got["stateProvince"] == "Alberta" and got["country"] == "Canada"
    # One person read three ways: the reading the others agree with is kept for both terms.
    assert got["recordedBy"] == got["identifiedBy"] == "R. Halvorsen"
    assert got["recordNumber"] == "61-112"
    assert "habitat" not in got  # "Disease Symptom" is not a habitat


@pytest.mark.parametrize(
    ("line", "term", "value"),
    [
        ("Botanicl Name Poa pratensis L.", "scientificName", "Poa pratensis L."),
        ("HabitatDry gravelly slope", "habitat", "Dry gravelly slope"),
        ("Habitatmoist meadow", "habitat", "moist meadow"),
        ("Locat ion Cypress Hills, Sask.", "locality", "Cypress Hills, Sask."),
        ("Dat Sept. 18, 1984", "eventDate", "1984-09-18"),
        ("Colletor J. W. Carmichael", "recordedBy", "J. W. Carmichael"),
        ("Coll No 5521", "recordNumber", "5521"),
    ],
)
def test_captions_misread_by_ocr(line: str, term: str, value: str) -> None:
    assert parse(line)[term] == value


def test_no_fuzzy_caption_in_a_latin_name() -> None:
    got = parse("Hosta ventricosa Stearn", "Datura stramonium L.")
    assert "associatedTaxa" not in got and "eventDate" not in got
    assert got["scientificName"] in ("Hosta ventricosa", "Datura stramonium L.")


def test_value_written_below_its_caption() -> None:
    lines = [
        Line("Locality:", 0.99, 1.0, (100, 100, 180, 120)),
        Line("Moose Jaw, Sask.", 0.95, 1.0, (110, 124, 300, 146)),
        Line("Habitat:", 0.99, 1.0, (100, 150, 170, 170)),
        Line("Regina, Sask.", 0.95, 1.0, (600, 174, 800, 196)),  # far right: not its value
    ]
    got = parse_label(lines)
    assert got["locality"].value == "Moose Jaw, Sask."
    assert got["stateProvince"].value == "Saskatchewan"
    assert "habitat" not in got


@pytest.mark.parametrize(
    ("line", "province"),
    [
        ("Locality: Kamloops, B.C.", "British Columbia"),
        ("Locality: 10 mi W of Estevan, Sask.", "Saskatchewan"),
        ("Locality: Banff, Alta", "Alberta"),
        ("Locality: Kenora, Ont.", "Ontario"),
        ("Locality: near Brandon, Man.", "Manitoba"),
        ("Locality: Halifax, N.S.", "Nova Scotia"),
        ("Locality: Missoula, Mont.", "Montana"),
        ("Locality: Fargo, N. Dak.", None),  # not an abbreviation the reader knows: no guess
    ],
)
def test_provinces_from_customary_abbreviations(line: str, province: str | None) -> None:
    assert parse(line).get("stateProvince") == province


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("Sept. 18, 1984", "1984-09-18"),
        ("20/06/47", "1947-06-20"),
        ("JUL 20 1961", "1961-07-20"),
        ("18 Sept 1984", "1984-09-18"),
        ("1984.09.18", "1984-09-18"),
        ("2 aout 1955", "1955-08-02"),
    ],
)
def test_label_date_forms(text: str, iso: str) -> None:
    got = parse_date(text)
    assert got is not None and got[0] == iso


class _Names:
    """A two-name checklist, answering as herbdesk.quality.checklist.Checklist does."""

    def match(self, name: str) -> object:
        from herbdesk.quality.checklist import Checklist

        return Checklist(["Coreopsis tinctoria", "Setaria viridis"]).match(name)


def test_checklist_corrects_a_doubtful_reading_keeping_its_authorship_and_saying_so() -> None:
    line = [Line("Botanical Name Coreopsis tinctorie Nutt.", 0.95, 0.75)]  # read unsteadily
    plain = parse_label(line)
    fixed = parse_label(line, checklist=_Names())
    assert plain["scientificName"].value == "Coreopsis tinctorie Nutt."
    assert "identificationRemarks" not in plain
    assert fixed["scientificName"].value == "Coreopsis tinctoria Nutt."
    assert (fixed["scientificName"].confidence or 1) < (plain["scientificName"].confidence or 0)
    remark = fixed["identificationRemarks"].value
    assert remark == (
        "scientificName read on the label as 'Coreopsis tinctorie Nutt.'; "
        "corrected to the checklist's Coreopsis tinctoria (match 95)"
    )
    listed = parse_label([("Botanical Name Setaria viridis (L.) Beauv.", 1.0)], _Names())
    assert listed["scientificName"].value == "Setaria viridis (L.) Beauv."
    assert "identificationRemarks" not in listed
    assert (listed["scientificName"].confidence or 0) > (fixed["scientificName"].confidence or 1)


def test_a_confident_reading_is_not_replaced_by_a_checklist_neighbour() -> None:
    """A misspelt checklist entry ("Setaria viridus") must not rewrite a clean reading: the
    reading stays, authorship and all, and the quality check suggests the listed name."""
    from herbdesk.quality.checklist import Checklist
    from herbdesk.quality.checks import QualityConfig, judge_record

    names = Checklist(["Setaria viridus", "Coreopsis tinctoria"])
    got = parse_label([("Botanical Name Setaria viridis (L.) Beauv.", 0.99)], names)
    assert got["scientificName"].value == "Setaria viridis (L.) Beauv."
    assert "identificationRemarks" not in got
    unlisted = parse_label([("Botanical Name Setaria viridis (L.) Beauv.", 0.99)])
    assert (got["scientificName"].confidence or 1) < (unlisted["scientificName"].confidence or 0)
    q = judge_record({t: v.value for t, v in got.items()}, QualityConfig(checklist=names))
    (finding,) = [f for f in q.findings if f.term == "scientificName"]
    assert finding.check == "name_fuzzy_match" and "Setaria viridus" in (finding.detail or "")
    # the same reading, unsure of itself, is corrected, and says so
    unsure = parse_label([Line("Botanical Name Setaria viridis (L.) Beauv.", 0.9, 0.6)], names)
    assert unsure["scientificName"].value == "Setaria viridus (L.) Beauv."
    assert "'Setaria viridis (L.) Beauv.'" in unsure["identificationRemarks"].value


def test_lines_the_ocr_read_differently_at_each_size_get_less_confidence() -> None:
    line = "Collector J. W. Carmichael"
    sure = parse_label([Line(line, 0.95, 1.0)])["recordedBy"].confidence
    unsure = parse_label([Line(line, 0.95, 0.6)])["recordedBy"].confidence
    assert sure is not None and unsure is not None and unsure < 0.75 * sure
