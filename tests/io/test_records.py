"""Stage records: versioned, validated, named in every error; the layout names every file once."""

import json

import pytest

from srbio.io.records import (
    Crop,
    CropFiles,
    Normalisation,
    QCVerdict,
    Range,
    RegisterFiles,
    Results,
    prediction_record_path,
)


def _crop(**kw):
    values = {"registration": "r.json", "lr_box": [(0, 4), (1, 5)], "hr_box": [(0, 8), (2, 10)],
              "scale": 2, "box_mode": "valid_bbox", "lr_spacing": [0.2, 0.2], "hr_spacing": [0.1, 0.1],
              "hr_origin_um": [0.0, 0.2], "valid_fraction_in_box": 0.9, "valid_fraction_kept": 1.0,
              "qc": QCVerdict(passed=True)}
    return Crop(**{**values, **kw})


def test_a_record_round_trips_with_its_version_tag(tmp_path):
    rec = _crop()
    path = rec.write(tmp_path / "crop.json")
    assert json.loads(path.read_text())["record"] == "srbio.crop/1"
    back = Crop.read(path)
    assert back == rec and back.lr_box == [(0, 4), (1, 5)]


def test_old_or_foreign_records_fail_naming_the_file_and_the_version(tmp_path):
    old = tmp_path / "box.json"
    old.write_text(json.dumps({"lr_box": [[0, 4]], "scale": 2, "qc_passed": True}))
    with pytest.raises(ValueError, match=r"box.json: no version tag .*srbio 0.1.0.*srbio.crop/1"):
        Crop.read(old)
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**_crop().model_dump(mode="json"), "record": "srbio.crop/7"}))
    with pytest.raises(ValueError, match=r"newer.json: record version 'srbio.crop/7'.*srbio.crop/1"):
        Crop.read(newer)
    broken = tmp_path / "broken.json"
    data = _crop().model_dump(mode="json")
    del data["scale"]
    broken.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"broken.json: invalid srbio.crop/1 record \(scale"):
        Crop.read(broken)
    (tmp_path / "garbage.json").write_text("{not json")
    with pytest.raises(ValueError, match="garbage.json: not valid JSON"):
        Crop.read(tmp_path / "garbage.json")


def test_ranges_must_be_ordered():
    with pytest.raises(ValueError, match="vmax"):
        Normalisation(lr=Range(vmin=5, vmax=5), hr=Range(vmin=0, vmax=1))


def test_the_layout_names_each_stage_file_once():
    r = Results("res")
    assert str(r.register("{pair}").record) == "res/register/{pair}/registration.json"
    assert set(RegisterFiles("x").outputs()) == {"transform", "resampled", "mask", "record", "qc"}
    assert set(r.enhance("p").outputs()) == set(CropFiles("x").outputs()) | {"provenance"}
    assert r.prediction("v").record == prediction_record_path(r.prediction("v").store)
    assert str(r.prediction("v").record) == "res/predict/v.json"
    assert str(r.log("train")) == "res/logs/train.log"
    assert str(r.train("{model}").model) == "res/train/{model}/model.pt"
    assert str(r.evaluate("edsr").record) == "res/evaluate/edsr/evaluation.json"
    assert str(r.log("register", "p")) == "res/logs/register/p.log"


def test_stores_and_their_records_map_both_ways():
    from srbio.io.records import patches_record_path, patches_store_path, prediction_store_path

    r = Results("res")
    assert patches_store_path(r.patches.record) == r.patches.store
    assert patches_record_path(r.patches.store) == r.patches.record
    assert prediction_store_path(r.prediction("v").record) == r.prediction("v").store


def test_what_made_a_record_is_optional_and_written_last(tmp_path):
    from srbio.io.records import LINEAGE, InputFile

    data = json.loads(_crop().write(tmp_path / "old.json").read_text())
    assert all(data.pop(key) is None for key in LINEAGE)  # written, as null, when unknown
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))  # as older srbio wrote it: no such fields
    back = Crop.read(path)
    assert (back.provenance, back.config, back.inputs) == (None, None, None)
    new = _crop(provenance={"srbio": "0.1.0"}, config={"crop": {"box": "valid_bbox"}},
                inputs=[InputFile(role="hr", path="hr.tif", sha256="0" * 64, method="file",
                                  size=3)])
    keys = list(json.loads(new.write(tmp_path / "new.json").read_text()))
    assert keys[0] == "record" and keys[-3:] == list(LINEAGE)
    assert Crop.read(tmp_path / "new.json") == new


def test_a_report_carries_its_record_in_its_last_line(tmp_path):
    from srbio.io.records import Report

    rec = Report(config={}, inputs=[], provenance={"srbio": "0.1.0", "note": "a --> b"})
    path = tmp_path / "report.md"
    path.write_text("# srbio report\n\ntext\n" + rec.line() + "\n")
    assert rec.line().startswith("<!-- srbio provenance: {") and rec.line().count("-->") == 1
    assert Report.from_report(path) == rec
    path.write_text("# srbio report\n\nwritten before reports carried their record\n")
    assert Report.from_report(path) is None
