import json
from pathlib import Path

import pytest

from srbio.config import Config, json_schema, load_config, validate_config

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = {"pairs": [{"name": "a", "lr": "lr.tif", "hr": "hr.tif"}]}


def test_the_shipped_config_is_valid():
    cfg = load_config(ROOT / "config.yaml")
    assert cfg.pairs[0].name == "lls" and cfg.registration.scale == 2
    assert cfg.predict.volumes[0].path.endswith("lr.tif")


@pytest.mark.parametrize(
    ("data", "pattern"),
    [({**MINIMAL, "trian": {}}, "unknown key 'trian'"),
     ({**MINIMAL, "train": {"epoch": 3}}, "unknown key 'train.epoch'"),
     ({"pairs": [{"name": "a", "lr": "x", "hr": "y", "hr_spacnig": [1, 1]}]},
      "unknown key 'pairs.0.hr_spacnig'"),
     ({**MINIMAL, "register": {"transform": "elastic"}}, r"register.transform.*'elastic'"),
     ({**MINIMAL, "predict": {"tile_shape": [32, 32], "overlap": 16}}, r"overlap \(16\)"),
     ({"pairs": []}, "pairs"),
     ({"pairs": MINIMAL["pairs"] * 2}, "repeated: \\['a'\\]"),
     ({"pairs": [{"name": "a b", "lr": "x", "hr": "y"}]}, "pairs.0.name"),
     # cross-field checks: fail when the config is read, not hours later
     ({**MINIMAL, "normalise": {"lr": [900, 100]}}, r"normalise.*lr: vmax must exceed vmin"),
     ({**MINIMAL, "normalise": {"percentiles": [99, 1]}}, "low < high"),
     ({**MINIMAL, "normalise": {"percentiles": [1, 101]}}, r"percentiles.1.*less than or equal"),
     ({**MINIMAL, "train": {"gain_augment": [0, 2]}}, r"gain_augment.0.*greater than 0"),
     ({**MINIMAL, "train": {"gain_augment": [2, 0.5]}}, "low <= high"),
     ({**MINIMAL, "train": {"epochs": 4, "max_steps": 100, "adversarial": {"start_epoch": 2}}},
      "max_steps counts optimiser steps, two a batch"),
     ({**MINIMAL, "train": {"max_steps": 0}}, r"max_steps.*greater than or equal to 1"),
     ({**MINIMAL, "predict": {"device": "gpu0"}}, r"predict.device.*cuda:N|predict.device"),
     ({**MINIMAL, "predict": {"tile_shape": [4, 4], "overlap": 0}}, r"tile_shape.0"),
     ({**MINIMAL, "register": {"scale": 5}}, "register.scale 5 cannot be trained.*1, 2, 3, 4, 8"),
     ({**MINIMAL, "model": {"name": "srgan"}}, "unknown network 'srgan'"),
     ({**MINIMAL, "model": {"preset": "huge"}}, "unknown preset 'huge'"),
     ({**MINIMAL, "model": {"params": {"depth": 3}}}, "no parameter 'depth'"),
     ({**MINIMAL, "version": 2}, r"version.*1"),
     ({**MINIMAL, "model": {"name": "rlfn"}, "patches": {"size": 12}},
      r"patches.size 12 is smaller than the 15 pixels network 'rlfn' \(rlfn\) needs"),
     ({**MINIMAL, "models": [{"label": "a", "name": "rcan"}, {"label": "b", "name": "rlfn"}],
       "patches": {"size": 12}}, r"15 pixels network 'rlfn' \(b\) needs"),
     ({**MINIMAL, "models": [{"label": "a", "name": "rcan", "train": {"epoch": 2}}]},
      r"(?s)models\[0\] \(a\).train.*unknown key 'epoch'"),
     ({**MINIMAL, "models": [{"label": "a", "name": "rcan"}, {"label": "a", "name": "edsr"}]},
      r"labels must be unique, repeated: \['a'\]"),
     ({**MINIMAL, "model": {"name": "edsr"}, "models": [{"label": "a", "name": "rcan"}]},
      "either `model`.*or `models`"),
     ({**MINIMAL, "models": [{"label": "a", "name": "rcan"}], "predict": {"model": "b"}},
      "predict.model 'b' is not a model label"),
     ({**MINIMAL, "train": {"epochs": 2, "adversarial": {"start_epoch": 2}}},
      "adversarial.start_epoch 2 must be less than epochs 2"),
     ({**MINIMAL, "train": {"patience": 2, "adversarial": {"start_epoch": 1}}},
      "patience stops on validation PSNR"),
     ({**MINIMAL, "train": {"perceptual": {"layer": 3}}}, r"train.perceptual.weights"),
     ({**MINIMAL, "train": {"ema": 1.0}}, r"train.ema"),
     ({**MINIMAL, "train": {"strategy": "fsdp"}}, r"train.strategy"),
     ({**MINIMAL, "model": {"name": "rcan3d"}}, r"'rcan3d' \(rcan3d\) is 3D: set patches.depth"),
     ({**MINIMAL, "patches": {"depth": 4}},
      r"patches.depth 4 makes 3D patches, but network 'rcan' \(rcan\) is 2D"),
     ({**MINIMAL, "model": {"name": "rcan3d"}, "patches": {"depth": 4},
       "train": {"adversarial": {"start_epoch": 1}}}, "the SRGAN discriminator is 2D"),
     ({**MINIMAL, "model": {"name": "edsr", "params": {"res_scale": -1}}}, "res_scale"),
     ({**MINIMAL, "train": {"loss": {"perceptual": 1}}}, r"train.loss.perceptual"),
     ({**MINIMAL, "train": {"loss": {}}}, r"train.loss"),
     ({**MINIMAL, "train": {"epochs": 3, "warmup_epochs": 3}}, "warmup_epochs 3 must be less"),
     ({**MINIMAL, "train": {"milestones": [2]}}, "milestones are for schedule: multistep"),
     ({**MINIMAL, "train": {"grad_clip": 0}}, r"train.grad_clip")],
)
def test_bad_configs_name_the_key_and_value(data, pattern):
    with pytest.raises(ValueError, match=pattern):
        validate_config(data, source="cfg.yaml")


def test_load_config_names_the_file(tmp_path):
    p = tmp_path / "my.yaml"
    p.write_text("pairs: [\n")
    with pytest.raises(ValueError, match="my.yaml: not valid YAML"):
        load_config(p)
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_config(tmp_path / "missing.yaml")


def test_json_schema_is_exported_and_forbids_extra_keys():
    schema = json.loads(json_schema())
    assert schema["additionalProperties"] is False
    assert "register" in schema["properties"]
    assert Config.model_validate(MINIMAL).model_dump(by_alias=True)["register"]["transform"] == "affine"


def test_valid_devices_and_the_version_default():
    for device in ("auto", "cpu", "cuda", "cuda:1", "mps"):
        assert validate_config({**MINIMAL, "predict": {"device": device}}).predict.device == device
    cfg = validate_config(MINIMAL)
    assert cfg.version == 1 and cfg.model.preset == "small"


def test_importing_the_schema_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, srbio.config, srbio.cli; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "False", r.stderr


def test_duplicate_keys_are_refused_at_any_level_naming_the_lines(tmp_path):
    from srbio.config import load_config

    top = tmp_path / "top.yaml"
    top.write_text("results: a\nresults: b\n")
    with pytest.raises(ValueError, match=r"top.yaml: .*key 'results' appears twice in one "
                                         r"mapping \(lines 1 and 2\)"):
        load_config(top)
    nested = tmp_path / "nested.yaml"
    nested.write_text("pairs:\n  - name: p\n    lr: a.tif\n    hr: b.tif\n    lr: c.tif\n")
    with pytest.raises(ValueError, match=r"key 'lr' appears twice .*lines 3 and 5"):
        load_config(nested)


@pytest.mark.parametrize(("section", "value", "match"), [
    ({"train": {"epochs": True}}, "epochs", "train.epochs: Input should be a valid integer"),
    ({"train": {"compile": "off"}}, "compile", "train.compile: Input should be a valid boolean"),
    ({"predict": {"tile_shape": ["64", "64"]}}, "tile", "predict.tile_shape.0"),
    ({"model": {"params": {"n_feats": 0.5}}}, "n_feats",
     "parameter 'n_feats' of network 'rcan' is a whole number \\(got 0.5\\)"),
])
def test_values_are_never_coerced(section, value, match):
    with pytest.raises(ValueError, match=match):
        validate_config(section)


def test_numbers_in_exponent_notation_are_numbers(tmp_path):
    from srbio.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text("pairs: [{name: p, lr: a.tif, hr: b.tif}]\n"
                    "train:\n  learning_rate: 5e-4\n")  # a string to YAML 1.1 readers
    assert load_config(path).train.learning_rate == 5e-4


@pytest.mark.parametrize("split", [{"val_fraction": 0}, {"test_fraction": 0.0}])
def test_an_empty_validation_or_test_band_is_refused_at_validation(split):
    key = next(iter(split))
    with pytest.raises(ValueError, match=f"split.{key}: Input should be greater than 0"):
        validate_config({"pairs": [{"name": "p", "lr": "a.tif", "hr": "b.tif"}], "split": split})


def test_yaml_merge_keys_work_and_quoted_numbers_stay_text(tmp_path):
    from srbio.config import read_yaml

    path = tmp_path / "c.yaml"
    path.write_text("base: &b {epochs: 3, learning_rate: 1e-3}\n"
                    "train:\n  <<: *b\n  epochs: 5\nname: '1e5'\nplain: 1e5\n")
    data = read_yaml(path)
    assert data["train"] == {"epochs": 5, "learning_rate": 1e-3}
    assert data["name"] == "1e5" and data["plain"] == 1e5
