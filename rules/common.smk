# Shared definitions: the validated configuration, the results layout, per-job settings.
# Nothing is written while the workflow is parsed: every job gets exactly its own settings
# through `params` (so a job re-runs when, and only when, those change) and every path in a
# shell command is quoted (`:q`). Jobs run `python -m srbio` of the environment running them
# (.venv, or envs/srbio.yaml with --sdm conda), which has srbio installed.
import json
import re
import shlex
from pathlib import Path

from snakemake.exceptions import WorkflowError

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


def launcher(wildcards, resources, threads):
    """`srun` starting one training process per SLURM task (DDP), or nothing: one process.

    With resources `mpi: "srun"` and `tasks` (one node) or `tasks_per_node` (with `nodes`)
    above 1 (profiles/slurm shows how), the job's shell runs `srun --ntasks-per-node=T
    --cpus-per-task=C` (srun does not pass on the job's CPUs per task); srbio train takes its
    devices and nodes from the tasks srun started.
    """
    per_node = resources.get("tasks_per_node") or resources.get("tasks") or 1
    if not resources.get("mpi") or int(per_node) <= 1:
        return ""
    nodes = int(resources.get("nodes") or 1)
    if nodes > 1 and not resources.get("tasks_per_node"):
        raise WorkflowError(f"train_model: nodes={nodes} with tasks={per_node}: give "
                            "tasks_per_node (the tasks of each node) instead of tasks")
    cpus = int(resources.get("cpus_per_task") or threads)
    return (f"{resources.mpi} --ntasks-per-node={int(per_node)} --nodes={nodes} "
            f"--cpus-per-task={cpus} --kill-on-bad-exit=1 ")


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
