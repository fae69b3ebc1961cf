"""Record quality: each check on good and bad values, and runs that parse but carry junk."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import pytest
from fakeapi import FakeApi
from helpers import api_config, events_of, raw_records, run

from herbdesk.common.assets import default_prompt_path
from herbdesk.events.types import EventType, HaltReason
from herbdesk.monitor.validation import ValidationConfig
from herbdesk.quality.checks import CHECKS, QualityConfig, judge_record, prompt_examples
from herbdesk.quality.dates import read_date
from herbdesk.quality.gold import compare, same_value
from herbdesk.quality.names import name_problem
from herbdesk.quality.places import country_code, subdivision
from herbdesk.runstate.load import load_state

TRUTH = Path(__file__).resolve().parents[2] / "shared" / "data" / "specimens" / "truth.json"
TODAY = date(2026, 12, 2)


def _checks(values: dict[str, str], **kw: object) -> set[str]:
    q = judge_record(values, QualityConfig(today=TODAY, **kw))  # type: ignore[arg-type]
    return {f.check for f in q.findings}


# ---------------------------------------------------------------- record checks


@pytest.mark.skipif(not TRUTH.exists(), reason="the sample sheets' truth is beside the checkout")
def test_the_sample_sheets_truth_is_usable_and_clean() -> None:
    truth = json.loads(TRUTH.read_text(encoding="utf-8"))
    for key, rec in truth.items():
        if key.startswith("_"):
            continue
        values = {t: v for t, v in rec.items() if not t.startswith("_")}
        q = judge_record(values, QualityConfig(today=TODAY))
        assert q.usable, (key, q.findings)
        assert not q.invalid, (key, q.findings)


@pytest.mark.parametrize(
    "name",
    [
        "Carex",
        "Carex aurea",
        "Carex aurea Nutt.",
        "Agropyron cristatum (L.) Gaertn.",
        "Poa pratensis L. subsp. angustifolia (L.) Lej.",
        "Colletotrichum gloeosporioides",
        "× Triticosecale",
        "Salix × rubens Schrank",
        "Carex cf. aurea",
        "Rosa sp.",
        "CAREX AUREA Nutt.",
        "Astragalus bisulcatus (Hook.) A. Gray",
    ],
)
def test_real_names_pass(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("Identified by", "name_boilerplate"),
        ("Checked by", "name_boilerplate"),
        ("Duplicate confirmed", "name_boilerplate"),
        ("Calibrite colorchecker", "name_boilerplate"),
        ("Host", "name_boilerplate"),
        ("Plants of Saskatchewan", "name_boilerplate"),
        ("Carex 1961", "name_digits"),
        ("Found by the river", "name_function_word"),
        ("Swift Current", "name_shape"),
        ("regina waterfowl park", "name_shape"),
        ("Malva Rotundifolia Host Plant Garden", "name_shape"),
    ],
)
def test_label_text_is_no_name(name: str, check: str) -> None:
    assert name_problem(name) == check


def test_hosta_is_a_genus_not_the_host_caption() -> None:
    assert name_problem("Hosta plantaginea (Lam.) Asch.") is None


@pytest.mark.parametrize(
    "value", ["-", "?", "n/a", "N/A", "unknown", "not visible", "Illegible", "none", "<string>"]
)
def test_placeholders_count_as_empty(value: str) -> None:
    q = judge_record({"scientificName": value, "eventDate": "1961-06-08"})
    assert q.filled == ("eventDate",)
    assert not q.usable
    assert {f.check for f in q.findings} >= {"placeholder", "required_missing"}


def test_false_term_names_and_prompt_examples_count_as_empty() -> None:
    examples = prompt_examples(default_prompt_path().read_text(encoding="utf-8"))
    assert examples["scientificName"] == "Malva neglecta Wallr."
    q = judge_record(
        {"scientificName": "Malva neglecta Wallr.", "eventDate": "1984-09-08",
         "locality": "locality", "recordedBy": False},
        QualityConfig(examples=examples),
    )  # fmt: skip
    assert q.filled == ()
    checks = [f.check for f in q.findings]
    assert checks.count("prompt_example") == 2
    assert "term_name" in checks and "placeholder" in checks


@pytest.mark.parametrize(
    ("value", "problem", "normalised"),
    [
        ("1984-09-18", None, "1984-09-18"),
        ("1984-09", None, "1984-09"),
        ("1984", None, "1984"),
        ("1961-06-08/1961-06-10", None, "1961-06-08/1961-06-10"),
        ("2809", "date_future", None),
        ("0195", "date_year_range", None),
        ("1222", "date_year_range", None),
        ("2027-01-01", "date_future", None),
        ("1984-13-01", "date_invalid", None),
        ("1984-02-30", "date_invalid", None),
        ("sometime in spring", "date_invalid", None),
        ("Sept 12, 1984", None, "1984-09-12"),
        ("Sept. 18, 1984", None, "1984-09-18"),
        ("08/18/83", None, "1983-08-18"),
        ("20/06/47", None, "1947-06-20"),
        ("JUL 20 1961", None, "1961-07-20"),
        ("8.IX.1984", None, "1984-09-08"),
        ("20 July 1961", None, "1961-07-20"),
    ],
)
def test_dates(value: str, problem: str | None, normalised: str | None) -> None:
    r = read_date(value, TODAY)
    assert r.problem == problem
    if problem is None:
        assert r.normalised == normalised


def test_a_verbatim_date_is_flagged_normalisable_not_invalid() -> None:
    q = judge_record(
        {"scientificName": "Carex aurea", "eventDate": "Sept 12, 1984"}, QualityConfig(today=TODAY)
    )
    assert q.usable and not q.invalid
    (f,) = q.findings
    assert f.check == "date_not_iso" and "1984-09-12" in f.detail


def test_countries_and_provinces() -> None:
    assert country_code("Canada") == "CA"
    assert country_code("U.S.A.") == "US"
    assert country_code("Atlantis") is None
    for value, code in [
        ("Saskatchewan", "CA-SK"),
        ("Sask.", "CA-SK"),
        ("B.C.", "CA-BC"),
        ("Ont.", "CA-ON"),
        ("SK", "CA-SK"),
        ("Québec", "CA-QC"),
    ]:
        assert subdivision(value, "CA") == code, value
    assert subdivision("Texas", "CA") is None
    assert subdivision("Calif.") == "US-CA"
    assert _checks({"country": "Canada", "stateProvince": "Texas"}) >= {"state_unknown"}
    assert "state_unknown" not in _checks({"country": "Canada", "stateProvince": "Sask."})
    assert "country_unknown" in _checks({"country": "Swift Current"})


def test_coordinates_elevation_and_numbers() -> None:
    assert "coord_zero" in _checks({"decimalLatitude": "0", "decimalLongitude": "0.0"})
    assert "coord_out_of_range" in _checks({"decimalLatitude": "95.1"})
    assert "coord_not_numeric" in _checks({"decimalLongitude": "west"})
    assert not _checks({"decimalLatitude": "50.28", "decimalLongitude": "-107.79"}) - {
        "required_missing"
    }
    # against the record's country (country outlines shipped offline)
    regina = {"country": "Canada", "decimalLatitude": "50.45", "decimalLongitude": "-104.61"}
    assert not _checks(regina) - {"required_missing"}
    assert "coord_sign_flipped" in _checks({**regina, "decimalLongitude": "104.61"})
    assert "coord_sign_flipped" in _checks({**regina, "decimalLatitude": "-50.45"})
    paris = {"country": "France", "decimalLatitude": "2.35", "decimalLongitude": "48.86"}
    assert "coord_swapped" in _checks(paris)
    assert "coord_outside_country" in _checks({**paris, "country": "Australia"})
    coast = {"country": "Canada", "decimalLatitude": "48.42", "decimalLongitude": "-123.37"}
    assert not _checks(coast) - {"required_missing"}  # Victoria, B.C., on the coast
    detail = judge_record(
        {**regina, "decimalLongitude": "104.61"},
        QualityConfig(),
    ).findings[0]
    assert "-104.61" in (detail.detail or "")
    assert "elevation_implausible" in _checks({"minimumElevationInMeters": "12000"})
    assert "elevation_not_numeric" in _checks({"minimumElevationInMeters": "high"})
    assert "number_is_date" in _checks({"recordNumber": "1961-06-08"})
    assert "number_is_word" in _checks({"recordNumber": "Habitat"})
    assert "number_is_date" not in _checks({"recordNumber": "84-24"})
    assert "catalog_pattern" in _checks({"catalogNumber": "A12"}, catalog_pattern=r"\d{6}")
    assert "catalog_pattern" not in _checks({"catalogNumber": "019008"}, catalog_pattern=r"\d{6}")


def test_people() -> None:
    assert "person_boilerplate" in _checks({"recordedBy": "Collector"})
    assert "person_boilerplate" in _checks({"identifiedBy": "Checked by"})
    assert "person_no_name" in _checks({"recordedBy": "1961"})
    assert not {"person_boilerplate", "person_no_name"} & _checks(
        {"recordedBy": "Dorothy Richman Wade; Douglas E. Wade"}
    )


def test_usable_rule_and_require() -> None:
    from herbdesk.quality.checks import parse_required

    assert judge_record({"scientificName": "Carex aurea", "locality": "Regina"}).usable
    assert not judge_record({"scientificName": "Carex aurea"}).usable
    assert not judge_record({"eventDate": "1961-06-08", "locality": "Regina"}).usable
    req = parse_required("scientificName,catalogNumber")
    assert req == (("scientificName",), ("catalogNumber",))
    assert not judge_record({"scientificName": "Carex aurea", "locality": "x"}, QualityConfig(
        required=req)).usable  # fmt: skip
    with pytest.raises(ValueError, match="not a Darwin Core term"):
        parse_required("scientificName,colour")


def test_every_check_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "quality.md").read_text("utf-8")
    for name in CHECKS:
        assert f"`{name}`" in doc, name


def test_gold_comparison_normalises() -> None:
    assert same_value("scientificName", "Agropyron cristatum (L.) Gaertn.", "agropyron cristatum")
    assert not same_value("scientificName", "Agropyron cristatum", "Agropyron pectiniforme")
    assert same_value("eventDate", "1961-06-08", "June 8, 1961")
    assert same_value("locality", "Regina Waterfowl Park", "regina waterfowl park.")
    assert compare({"recordedBy": "M. Molloy", "eventDate": "1984-09-18"}, {"recordedBy": "x"}) == {
        "recordedBy": "wrong",
        "eventDate": "missing",
    }


# ---------------------------------------------------------------- runs


def _cfg(images: Path, tmp_path: Path, api: FakeApi, **kw: object):  # type: ignore[no-untyped-def]
    kw.setdefault("concurrency", 1)
    cfg = api_config(images, tmp_path / "runs", api.base_url, **kw)  # type: ignore[arg-type]
    cfg.engine.prompt_text = default_prompt_path().read_text(encoding="utf-8")
    return cfg


@pytest.mark.parametrize(
    "action", ["basis_only", "placeholders", "prompt_example", "term_names", "boilerplate"]
)
def test_junk_replies_halt_at_the_quality_checkpoint(
    tmp_path: Path, many_images, action: str
) -> None:
    images = many_images(30)
    with FakeApi(default=action) as api:
        outcome, pipe = run(_cfg(images, tmp_path, api))
    assert outcome.status == "failed"
    assert outcome.reason == HaltReason.EARLY_QUALITY_FAILED, outcome.message
    assert pipe.started_count <= 5 + 1  # the checkpoint decides at the 5th (concurrency 1)
    evs = events_of(outcome.run_dir)
    (cp,) = [e for e in evs if e.event_type == EventType.QUALITY_CHECKPOINT]
    assert cp.data["status"] == "failed" and cp.data["usable_rate"] == 0.0
    if action == "boilerplate":
        assert "scientificName" in cp.data["failed_terms"]
        assert cp.data["failed_terms"]["scientificName"]  # example values shown


def test_identical_records_halt(tmp_path: Path, many_images) -> None:
    images = many_images(30)
    with FakeApi(default="identical") as api:
        outcome, pipe = run(_cfg(images, tmp_path, api))
    assert outcome.reason == HaltReason.IDENTICAL_RECORDS, outcome.message
    assert pipe.started_count <= 4


def test_varied_good_records_pass_and_carry_quality(tmp_path: Path, many_images) -> None:
    images = many_images(30)
    with FakeApi() as api:
        outcome, _ = run(_cfg(images, tmp_path, api, concurrency=3))
    assert outcome.status == "completed", outcome.message
    assert outcome.verdict == "passed"
    assert outcome.quality["usable"] == 30 and outcome.quality["identical_records"] == 0
    evs = events_of(outcome.run_dir)
    done = [e for e in evs if e.event_type == EventType.SPECIMEN_COMPLETED]
    assert all(e.data["quality"]["usable"] for e in done)
    assert done[-1].metrics["usable_rate"] == 1.0
    s = load_state(outcome.run_dir)[0].summary()
    assert s["quality"]["usable_rate"] == 1.0
    assert s["quality"]["terms"]["scientificName"] == {"filled": 30, "valid": 30, "invalid": 0}
    assert s["verdict"] == "passed"


def test_a_run_that_degrades_after_the_checkpoint_halts(tmp_path: Path, many_images) -> None:
    images = many_images(120)
    script = ["good"] * 10 + ["good", "boilerplate", "placeholders"] * 40
    with FakeApi(script=script) as api:
        outcome, pipe = run(_cfg(images, tmp_path, api))
    assert outcome.reason == HaltReason.DEGRADED, outcome.message
    assert pipe.started_count < 60


def test_no_degraded_halt_finishes_below_threshold(tmp_path: Path, many_images) -> None:
    images = many_images(60)
    script = ["good"] * 10 + ["good", "boilerplate", "placeholders"] * 20
    val = ValidationConfig(degraded_halt=False)
    with FakeApi(script=script) as api:
        outcome, _ = run(_cfg(images, tmp_path, api, validation=val))
    assert outcome.status == "completed"
    assert outcome.verdict == "below_threshold", outcome.quality
    (end,) = [e for e in events_of(outcome.run_dir) if e.event_type == "extraction.completed"]
    assert end.data["verdict"] == "below_threshold" and end.data["quality"]["usable"] < 30


def test_a_small_run_where_every_specimen_fails_is_not_a_success(
    tmp_path: Path, many_images
) -> None:
    images = many_images(3)  # smaller than the checkpoint
    with FakeApi(default="garbage") as api:
        outcome, _ = run(_cfg(images, tmp_path, api))
    assert outcome.status == "completed"
    assert outcome.verdict == "below_threshold"


def test_gold_sheets_go_first_and_wrong_answers_halt(tmp_path: Path, many_images) -> None:
    images = many_images(20)
    gold = tmp_path / "gold.csv"
    with open(gold, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "scientificName", "eventDate"])
        for i in (12, 15, 17):  # plausible but not what the model will say
            w.writerow([f"sheet_{i:04d}.jpg", "Primula mistassinica Michx.", "1931-07-02"])
    from herbdesk.quality.judge import QualitySettings

    with FakeApi() as api:
        cfg = _cfg(images, tmp_path, api, quality=QualitySettings(gold_path=gold))
        outcome, pipe = run(cfg)
    assert outcome.reason == HaltReason.GOLD_FAILED, outcome.message
    evs = events_of(outcome.run_dir)
    golds = [e for e in evs if e.event_type == EventType.QUALITY_GOLD]
    assert len(golds) == 3 and all(set(g.data["terms"].values()) == {"wrong"} for g in golds)
    firsts = [e.data["image"] for e in evs if e.event_type == EventType.SPECIMEN_PROCESSING][:3]
    assert sorted(firsts) == ["sheet_0012.jpg", "sheet_0015.jpg", "sheet_0017.jpg"]
    assert pipe.started_count <= 4


def test_gold_sheets_answered_right_let_the_run_go_on(tmp_path: Path, many_images) -> None:
    images = many_images(8)
    with FakeApi() as api:
        first, _ = run(_cfg(images, tmp_path / "a", api))
        recs = {r["image"]: r["dwc"] for r in raw_records(first.run_dir)}
        gold = tmp_path / "gold.csv"
        with open(gold, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["image", "scientificName", "recordedBy"])
            for name in ("sheet_0001.jpg", "sheet_0006.jpg"):
                d = recs[name]
                w.writerow([name, d["scientificName"]["value"], d["recordedBy"]["value"]])
        from herbdesk.quality.judge import QualitySettings

        cfg = _cfg(images, tmp_path / "b", api, quality=QualitySettings(gold_path=gold))
        outcome, _ = run(cfg)
    assert outcome.status == "completed", outcome.message
    golds = [e for e in events_of(outcome.run_dir) if e.event_type == EventType.QUALITY_GOLD]
    assert [g.data["correct"] for g in golds] == [2, 2]


def test_a_published_style_raw_jsonl_shows_its_real_quality(tmp_path: Path) -> None:
    """The original scripts' raw.jsonl: every record 'succeeded', most are junk."""
    lines = []
    junk = ["Identified by", "Checked by", "Duplicate confirmed", "Calibrite colorchecker"]
    for i in range(200):
        dwc: dict[str, object] = {"basisOfRecord": {"value": "PreservedSpecimen"}}
        if i % 5:
            dwc["scientificName"] = {"value": junk[i % 4], "confidence": 0.95}
            dwc["eventDate"] = {"value": ["2809", "0195", "1222", "1961-06-08"][i % 4]}
        lines.append(json.dumps({"image": f"{i:064x}.jpg", "model": "ocr", "dwc": dwc}))
    raw = tmp_path / "raw.jsonl"
    raw.write_text("\n".join(lines) + "\n", encoding="utf-8")
    state, _ = load_state(raw)
    s = state.summary()
    assert s["success_rate"] == 1.0  # what the original scripts counted
    q = s["quality"]
    assert q["usable"] == 0 and q["usable_rate"] == 0.0
    assert q["terms"]["scientificName"]["invalid"] == 160
    assert q["findings"]["name_boilerplate"] == 160
    assert q["findings"]["date_year_range"] == 80
    assert q["identical_records"] == 0  # junk counts as junk (findings), not as identical


def test_a_checklist_corrects_and_flags_names(tmp_path: Path) -> None:
    from herbdesk.quality.judge import QualitySettings, RecordJudge

    names = tmp_path / "names.txt"
    names.write_text("Coreopsis tinctoria Nutt.\nCarex aurea Nutt.\nMalva rotundifolia L.\n")
    judge = RecordJudge.from_settings(QualitySettings(checklist_path=names))
    q = judge.quality({"scientificName": "Coreopsis tinctorie", "eventDate": "1963-08-14"})
    (f,) = q["findings"]
    assert f[0] == "name_fuzzy_match" and "Coreopsis tinctoria" in f[3]
    assert q["usable"]  # a warning: the record stays usable, the suggestion is shown
    q = judge.quality({"scientificName": "Quercus alba", "eventDate": "1963-08-14"})
    assert q["findings"][0][0] == "name_not_in_checklist"
    assert judge.quality({"scientificName": "Carex aurea", "locality": "Regina"})["findings"] == []


def test_cli_rejects_a_bad_gold_file_before_anything_runs(tmp_path: Path, many_images) -> None:
    from herbdesk.cli import main

    images = many_images(2)
    gold = tmp_path / "gold.csv"
    gold.write_text("file,scientificName\nx.jpg,Carex aurea\n", encoding="utf-8")
    out = tmp_path / "runs"
    code = main(["run", str(images), "--gold", str(gold), "--out", str(out), "--quiet"])
    assert code == 2
    assert not out.exists() or not any(out.iterdir())


def test_identical_usable_records_are_counted_in_the_summary(tmp_path: Path) -> None:
    rec = {"scientificName": {"value": "Carex aurea Nutt."}, "locality": {"value": "Regina"}}
    lines = [json.dumps({"image": f"s{i}.jpg", "dwc": rec}) for i in range(4)]
    other = {"scientificName": {"value": "Poa pratensis L."}, "locality": {"value": "Regina"}}
    lines.append(json.dumps({"image": "s9.jpg", "dwc": other}))
    raw = tmp_path / "raw.jsonl"
    raw.write_text("\n".join(lines) + "\n", encoding="utf-8")
    q = load_state(raw)[0].summary()["quality"]
    assert q["usable"] == 5 and q["identical_records"] == 4


def test_a_failed_gold_sheet_counts_every_expected_term_missing(tmp_path: Path) -> None:
    from herbdesk.quality.judge import QualitySettings, RecordJudge

    gold = tmp_path / "gold.csv"
    gold.write_text("image,scientificName,eventDate\na.jpg,Carex aurea,1961-06-08\n", "utf-8")
    judge = RecordJudge.from_settings(QualitySettings(gold_path=gold))
    r = judge.gold_result("a.jpg", {})  # a failed specimen's record has no values
    assert r is not None and r["terms"] == {"scientificName": "missing", "eventDate": "missing"}
    assert judge.gold_result("b.jpg", {}) is None


def test_a_json_transcription_is_a_gold_file(tmp_path: Path, many_images) -> None:
    """The truth.json form (image stem -> terms, `_` keys skipped) works as `--gold`."""
    from herbdesk.quality.judge import QualitySettings, RecordJudge

    images = many_images(12)
    gold = tmp_path / "truth.json"
    sheet = {"scientificName": "Primula mistassinica Michx.", "_handwritten": ["scientificName"]}
    gold.write_text(
        json.dumps({"_note": "transcribed by hand", "sheet_0004": sheet, "sheet_0009": sheet}),
        encoding="utf-8",
    )
    judge = RecordJudge.from_settings(QualitySettings(gold_path=gold))
    assert judge.is_gold_image("sheet_0004.jpg") and not judge.is_gold_image("sheet_0005.jpg")
    r = judge.gold_result("sheet_0009.jpg", {"scientificName": "Primula mistassinica"})
    assert r is not None and r["terms"] == {"scientificName": "correct"}
    with FakeApi() as api:
        outcome, _ = run(_cfg(images, tmp_path, api, quality=QualitySettings(gold_path=gold)))
    assert outcome.reason == HaltReason.GOLD_FAILED, outcome.message
    evs = events_of(outcome.run_dir)
    firsts = [e.data["image"] for e in evs if e.event_type == EventType.SPECIMEN_PROCESSING][:2]
    assert sorted(firsts) == ["sheet_0004.jpg", "sheet_0009.jpg"]


@pytest.mark.skipif(not TRUTH.exists(), reason="the sample sheets' truth is beside the checkout")
def test_the_sample_sheets_truth_loads_as_gold_by_the_benchmarks_reader() -> None:
    from benchmarks.ocr_quality import load_truth
    from herbdesk.quality.gold import GoldSet

    gold = GoldSet.load(TRUTH)
    truth = load_truth(TRUTH)
    assert len(gold) == len(truth) == 5
    expected = gold.named("specimen_001.jpg")
    assert expected is not None and "_handwritten" not in expected
    assert dict(expected) == {t: v for t, v in truth["specimen_001"].items() if t[0] != "_"}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("file,scientificName\nx.jpg,Carex aurea\n", "JSON form"),
        ('{"a": {"scientificName": "Carex"', "not valid JSON"),
        ('{"a": ["Carex"]}', "is not an object of terms"),
        ('{"a": {"colour": "green"}}', "'colour' is not a Darwin Core term"),
        ('{"_note": "nothing else"}', "lists no sheets"),
    ],
)
def test_a_bad_gold_file_says_what_a_gold_file_looks_like(
    tmp_path: Path, text: str, says: str
) -> None:
    from herbdesk.quality.gold import GoldError, GoldSet

    gold = tmp_path / "gold.txt"
    gold.write_text(text, encoding="utf-8")
    with pytest.raises(GoldError, match=says):
        GoldSet.load(gold)
