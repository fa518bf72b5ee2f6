"""`srbio provenance`: real outputs of the stages lead back to their model, data, config and
checksums; foreign files are refused naming them; records of older srbio say "not recorded"."""

import hashlib
import json
import shutil

import numpy as np
import pytest
import tifffile

from srbio.cli import main
from srbio.config import (
    Background,
    EnhanceConfig,
    ModelConfig,
    PredictConfig,
    SplitConfig,
    TrainConfig,
)
from srbio.io import read_image, write_tiff
from srbio.io.records import LINEAGE
from srbio.stages.crop import run_crop
from srbio.stages.enhance import run_enhance
from srbio.stages.evaluate import run_evaluate
from srbio.stages.predict import run_predict
from srbio.stages.report import run_report
from srbio.stages.train import run_train

PREDICT = PredictConfig(tile_shape=(48, 48), overlap=8, chunk=64)


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_sha256(folder) -> str:
    """The ``tree`` method as srbio.io.checksums documents it, written out again."""
    rows = sorted((p.relative_to(folder).as_posix(), p) for p in folder.rglob("*") if p.is_file())
    text = "".join(f"{rel}\t{p.stat().st_size}\t{sha256(p)}\n" for rel, p in rows)
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def srbio(capsys):
    """``srbio ARGS`` in-process: (exit status, stdout, stderr)."""
    def run(*args):
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err
    return run


@pytest.fixture(scope="module")
def chain(tmp_path_factory, prepared, pair2d):
    """A tiny model trained on the shared prepared pair (1 epoch), and its prediction of the
    simulated LR."""
    root = tmp_path_factory.mktemp("provenance")
    train = run_train(prepared / "patches.zarr", prepared / "normalisation.json",
                      root / "train", ModelConfig(preset="tiny"),
                      TrainConfig(epochs=1, batch_size=32), progress=False)
    run_predict(train.model, pair2d["lr"], root / "pred.ome.zarr", PREDICT, progress=False)
    return {"root": root, "model": train.model, "store": root / "pred.ome.zarr",
            "record": root / "pred.json", "prepared": prepared, "lr": pair2d["lr"]}


def _step(result, stage):
    (step,) = [s for s in result["steps"] if s["stage"] == stage]
    return step


def _input(step, role):
    (found,) = [i for i in step["inputs"] if i["role"] == role]
    return found


def test_a_prediction_names_its_model_and_the_model_its_training_inputs_with_their_sha256(
        srbio, chain):
    code, out, err = srbio("provenance", chain["store"])
    assert code == 0, err
    prepared = chain["prepared"]
    blocks = out.split("\n\n")
    first = next(b for b in blocks if b.startswith("[1] predict"))
    assert f"model: {chain['model']}  → [2] train" in first
    assert f"sha256 {sha256(chain['model'])} (file, " in first
    assert f"sha256 {sha256(chain['lr'])} (file, " in first
    train = next(b for b in blocks if b.startswith("[2] train"))
    assert f"record:  {chain['model'].parent / 'training.json'} (srbio.training/1)" in train
    for role, path, digest in (
            ("normalisation", prepared / "normalisation.json",
             sha256(prepared / "normalisation.json")),
            ("patches record", prepared / "patches.json", sha256(prepared / "patches.json")),
            ("patches", prepared / "patches.zarr", tree_sha256(prepared / "patches.zarr"))):
        line = f"      {role}: {path}  → ["
        assert line in train, (line, train)
        assert train.split(line)[1].split("\n")[1].strip().startswith(f"sha256 {digest} (")
    assert "made:    20" in train and "by srbio 0.1.0 (Python 3." in train and "torch " in train


def test_json_holds_the_config_sections_each_run_used_and_the_whole_chain(srbio, chain):
    code, out, _ = srbio("provenance", "--json", chain["store"])
    assert code == 0
    result = json.loads(out)
    assert [s["stage"] for s in result["steps"]] == [
        "predict", "train", "simulate", "patches", "normalise", "crop", "register"]
    predict = result["steps"][0]
    assert predict["record"] == str(chain["record"]) and predict["tag"] == "srbio.prediction/2"
    assert predict["config"]["predict"]["tile_shape"] == [48, 48]
    assert predict["config"]["predict"]["overlap"] == 8 and predict["config"]["predict"]["chunk"] == 64
    model = _input(predict, "model")
    assert model["sha256"] == sha256(chain["model"]) and model["step"] == 2
    assert model["origin"] == "srbio" and model["method"] == "file"
    assert model["size"] == chain["model"].stat().st_size
    train = _step(result, "train")
    assert train["config"]["model"]["preset"] == "tiny"
    assert train["config"]["train"]["epochs"] == 1 and train["config"]["train"]["batch_size"] == 32
    assert _input(train, "patches")["method"] == "tree"
    patches, normalise = _step(result, "patches"), _step(result, "normalise")
    assert patches["config"]["patches"] == {"size": 16, "n_train": 256, "n_val": 32,
                                            "min_foreground": 0.05, "depth": None, "seed": 0}
    assert normalise["config"]["split"] == {"axis": "y", "val_fraction": 0.2, "test_fraction": 0.2}
    crop = _step(result, "crop")
    assert _input(patches, "crops")["step"] == _input(normalise, "crops")["step"] == crop["step"]
    assert _input(crop, "registered")["sha256"] == tree_sha256(chain["prepared"] / "register" / "p")
    register = _step(result, "register")
    assert register["config"]["register"]["transform"] == "affine"
    assert _input(register, "fixed")["origin"] == "external"
    assert _input(register, "moving")["step"] == _input(predict, "input")["step"] == \
        _step(result, "simulate")["step"]
    assert all(s["made"]["srbio"] == "0.1.0" and s["inputs_recorded"] for s in result["steps"])
    assert result["verify"] is None


def test_verify_passes_on_the_untouched_chain(srbio, chain):
    code, out, _ = srbio("provenance", "--verify", "--json", chain["store"])
    result = json.loads(out)
    assert code == 0 and result["verify"]["changed"] == [] and result["verify"]["missing"] == []
    # model, LR, truth, HR, register, crop, patches store and record, normalisation
    assert result["verify"]["unchanged"] == 9
    assert {i["verified"] for s in result["steps"] for i in s["inputs"]} == {"unchanged"}


def test_verify_finds_an_input_changed_or_removed_after_the_run(srbio, prepared, pair2d,
                                                                tmp_path):
    hr = tmp_path / "hr.tif"
    shutil.copy(pair2d["hr"], hr)
    out = run_crop(prepared / "register" / "p", hr, tmp_path / "crop").root
    assert srbio("provenance", "--verify", out)[0] == 0
    image, spacing = read_image(hr)
    image[3, 4] += 1  # one pixel, one grey level
    write_tiff(hr, image, spacing=spacing)
    code, text, _ = srbio("provenance", "--verify", out / "lr.tif")
    assert code == 1
    assert f"      hr: {hr}  (not an srbio output)\n          sha256 " in text
    assert "  [CHANGED]" in text.split(f"hr: {hr}")[1].split("\n")[1]
    assert f"changed since: {hr}" in text and "0 missing" in text
    hr.unlink()
    code, text, _ = srbio("provenance", "--verify", "--json", out)
    assert code == 1 and json.loads(text)["verify"]["missing"] == [str(hr)]


@pytest.mark.parametrize("content", ["tiff", "text", "json", "folder"])
def test_files_srbio_did_not_write_are_refused_naming_them(srbio, tmp_path, content):
    path = tmp_path / {"tiff": "image.tif", "text": "notes.txt", "json": "data.json",
                       "folder": "folder"}[content]
    if content == "tiff":
        tifffile.imwrite(path, np.random.default_rng(0).integers(0, 999, (16, 16), np.uint16))
    elif content == "json":
        path.write_text(json.dumps({"record": "someone else's", "values": [1, 2]}))
    elif content == "folder":
        path.mkdir()
    else:
        path.write_text("not an image\n")
    code, out, err = srbio("provenance", path)
    assert code == 2 and out == ""
    assert err.startswith(f"srbio provenance: error: {path}: not an output of srbio (")
    assert "expected an output of srbio: a stage record" in err


def test_a_missing_path_is_named(srbio, tmp_path):
    code, _, err = srbio("provenance", tmp_path / "absent.ome.zarr")
    assert code == 2 and f"{tmp_path / 'absent.ome.zarr'}: not found" in err


def test_a_results_folder_names_the_outputs_it_holds(srbio, prepared):
    code, _, err = srbio("provenance", prepared)
    assert code == 2 and "It holds srbio outputs (crop, " in err  # other tests add outputs
    assert "normalisation.json, patches.json, patches.zarr, " in err and "give one of them" in err


def _strip(record, to):
    """A copy of a record as older srbio wrote it: without the fields that say what made it."""
    data = json.loads(record.read_text())
    for key in LINEAGE:
        data.pop(key, None)
    to.parent.mkdir(parents=True, exist_ok=True)
    to.write_text(json.dumps(data))
    return to


def test_records_of_older_srbio_say_not_recorded_and_still_lead_on(srbio, chain, tmp_path):
    old = _strip(chain["record"], tmp_path / "old" / "pred.json")
    code, out, err = srbio("provenance", old)
    assert code == 0, err
    first = out.split("\n\n")[1]
    assert "made:    not recorded (written before srbio recorded it)" in first
    assert "config:  not recorded" in first
    assert "inputs:  (checksums not recorded: written before srbio recorded them)" in first
    assert f"model: {chain['model']}  → [2] train\n          sha256 not recorded" in first
    assert "[2] train" in out and "[3] simulate" in out  # the model's own record still leads on
    code, out, _ = srbio("provenance", "--verify", "--json", old)
    result = json.loads(out)
    assert code == 0 and result["steps"][0]["config"] is None
    assert [i["verified"] for i in result["steps"][0]["inputs"]] == ["not recorded"] * 2


def test_a_training_record_of_older_srbio_shows_its_short_digests(srbio, chain, tmp_path):
    record = chain["model"].parent / "training.json"
    data = json.loads(record.read_text())
    del data["inputs"]  # its provenance (config, 16-digit digests) is older than the field
    (tmp_path / "training.json").write_text(json.dumps(data))
    code, out, _ = srbio("provenance", tmp_path / "training.json")
    assert code == 0
    from srbio.stages.train import _digest  # the training fingerprint's (lineage left out)

    short = _digest(chain["prepared"] / "normalisation.json")
    assert f"sha256 not recorded (16-digit digest {short})" in out
    assert "preset: tiny" in out  # the config sections it did record


@pytest.mark.parametrize(("inside", "stage", "record"), [
    ("crop/p/lr.tif", "crop", "crop/p/crop.json"),
    ("crop/p", "crop", "crop/p/crop.json"),
    ("register/p/qc.png", "register", "register/p/registration.json"),
    ("register/p/moving_resampled.tif", "register", "register/p/registration.json"),
    ("normalisation.json", "normalise", "normalisation.json"),
    ("patches.zarr", "patches", "patches.json"),
    ("patches.zarr/train/lr", "patches", "patches.json"),
])
def test_every_output_of_a_stage_leads_to_its_record(srbio, prepared, inside, stage, record):
    code, out, _ = srbio("provenance", "--json", prepared / inside)
    first = json.loads(out)["steps"][0]
    assert code == 0 and (first["stage"], first["record"]) == (stage, str(prepared / record))
    assert first["made"]["srbio"] == "0.1.0"


def test_model_files_stores_and_enhanced_pairs_lead_to_what_made_them(srbio, chain, tmp_path,
                                                                       prepared):
    result = json.loads(srbio("provenance", "--json", chain["model"])[1])
    assert result["steps"][0]["stage"] == "train"
    assert result["steps"][0]["note"] == "model.pt is part of this output"
    loose = tmp_path / "copied.pt"  # away from its train folder: its own header speaks
    shutil.copy(chain["model"], loose)
    first = json.loads(srbio("provenance", "--json", loose)[1])["steps"][0]
    assert first["tag"] == "srbio.model/1" and first["config"]["model"]["preset"] == "tiny"
    assert _input(first, "normalisation")["sha256"] == sha256(prepared / "normalisation.json")
    chunk = next(p for p in (chain["store"] / "0").rglob("*") if p.is_file())
    assert json.loads(srbio("provenance", "--json", chunk)[1])["steps"][0]["record"] == str(
        chain["record"])
    out = run_enhance(prepared / "crop" / "p", tmp_path / "enhance",
                      EnhanceConfig(steps=[Background(kind="background", method="gaussian",
                                                      radius_um=3.0)])).root
    steps = json.loads(srbio("provenance", "--json", out / "hr.tif")[1])["steps"]
    assert [s["stage"] for s in steps[:3]] == ["enhance", "crop", "register"]
    assert steps[0]["config"]["enhance"]["steps"][0]["radius_um"] == 3.0
    assert _input(steps[0], "crop")["sha256"] == tree_sha256(prepared / "crop" / "p")


def test_a_report_leads_to_the_records_it_was_written_from(srbio, chain):
    prepared, root = chain["prepared"], chain["root"]
    split = SplitConfig(axis="y", val_fraction=0.2, test_fraction=0.2)
    run_evaluate(chain["model"], [prepared / "crop" / "p"], root / "evaluate", split,
                 PredictConfig(tile_shape=(64, 64)))
    report = run_report(root / "report.md", evaluation=[root / "evaluate" / "evaluation.json"],
                        training=[chain["model"].parent / "training.json"],
                        normalisation=prepared / "normalisation.json",
                        registrations=[prepared / "register" / "p" / "registration.json"])
    assert report.read_text().startswith("# srbio report")
    steps = json.loads(srbio("provenance", "--json", report)[1])["steps"]
    assert [s["stage"] for s in steps[:5]] == ["report", "evaluate", "train", "normalise",
                                               "register"]
    assert [i["role"] for i in steps[0]["inputs"]] == ["evaluation", "training", "normalisation",
                                                      "registrations"]
    assert steps[0]["config"] == {} and steps[0]["tag"] == "srbio.report/1"
    assert _input(steps[0], "training")["sha256"] == sha256(chain["model"].parent / "training.json")
    assert steps[1]["config"]["predict"]["tile_shape"] == [64, 64]
    assert _input(steps[1], "model")["step"] == 3
    text = srbio("provenance", report)[1]
    assert "config:  none (the stage reads no config section)" in text
