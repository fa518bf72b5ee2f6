# Shared definitions: the validated configuration, the results layout, per-job settings.
# Nothing is written while the workflow is parsed: every job gets exactly its own settings
# through `params` (so a job re-runs when, and only when, those change) and every path in a
# shell command is quoted (`:q`). Jobs run `python -m srbio` of the environment running them
# (.venv, or envs/srbio.yaml with --sdm conda), which has srbio installed.
import json
import re
import shlex
from pathlib import Path

from srbio.config import (
    deep_update,
    model_settings,
    read_yaml,
    section_settings,
    validate_config,
    yaml_value,
)
from srbio.io.records import Results, parent, patches_store_path, prediction_store_path
from srbio.stages.checks import check_paths


def _typed(value):
    """A --config value as srbio's YAML reader reads it: Snakemake leaves nested ones strings."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return yaml_value(value) if isinstance(value, str) and value else value


# The configuration files are read again with srbio's reader (Snakemake's keeps the last of
# duplicate keys and reads 1e-3 as text), then the --config values are laid over them.
_data = {}
for _file in workflow.configfiles:
    _data = deep_update(_data, read_yaml(_file) or {})
_data = deep_update(_data, _typed(dict(workflow.config_settings.overwrite_config)))
CFG = validate_config(_data, source=", ".join(map(str, workflow.overwrite_configfiles)) or "config.yaml")
for _problem in check_paths(CFG):
    raise ValueError(_problem)
R = Results(Path(CFG.results))
SIM = {s.name: s for s in CFG.simulate}
PAIRS = {p.name: p for p in CFG.pairs}
VOLUMES = {v.name: v for v in CFG.predict.volumes}
PREDICTIONS = [str(R.prediction(name).record) for name in VOLUMES]
MODELS = CFG.trained_models()  # label -> (network, train settings): one train job each
PREDICTOR = CFG.predicting_model  # the model that predicts the volumes
PARTS = CFG.predict.parts  # predict jobs per volume: > 1 scatters each (rules/predict.smk)


def train_extra(w):
    """Files a model's training reads besides the patches: a model to fine-tune from, VGG weights."""
    return list(MODELS[w.model][1].input_files().values())


def settings(*sections, **exclude):
    """JSON of the config sections one job reads (exclude: fields left out per section)."""
    return section_settings(CFG, *sections, exclude=exclude)


def predict_step(volume, step):
    """Marker of a finished step of a scattered prediction (`init`, or part `i-of-N`).

    A hidden file in `.VOLUME.parts/` beside the record: the store itself is no Snakemake
    output, since its steps resume and complete it in place.
    """
    record = R.prediction(volume).record
    return str(record.with_name(f".{record.stem}.parts") / f"{step}.done")


def outputs(folder):
    """A stage folder's output files (srbio.io.records), as Snakemake named outputs."""
    return {name: str(path) for name, path in folder.outputs().items()}


def spacing_flag(flag, values):
    """`--flag v1 v2 v3` for pixel sizes given in config (numbers: nothing to quote)."""
    return f"{flag} {' '.join(str(float(v)) for v in values)}" if values else ""


def optional_flag(flag, path):
    """`--flag 'path'` (quoted) when a path is given, else nothing."""
    return f"{flag} {shlex.quote(str(path))}" if path else ""


wildcard_constraints:
    sim="|".join(map(re.escape, SIM)) or "NO_SIMULATION",
    pair="|".join(map(re.escape, PAIRS)),
    volume="|".join(map(re.escape, VOLUMES)) or "NO_VOLUME",
    model="|".join(map(re.escape, MODELS)),
