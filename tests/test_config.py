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
     ({**MINIMAL, "predict": {"tile_shape": [32, 32], "overlap": 16}}, "overlap 16"),
     ({"pairs": []}, "pairs"),
     ({"pairs": MINIMAL["pairs"] * 2}, "repeated: \\['a'\\]"),
     ({"pairs": [{"name": "a b", "lr": "x", "hr": "y"}]}, "pairs.0.name")],
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
