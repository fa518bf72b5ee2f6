# Shared definitions: the validated configuration and helpers. Every rule runs the srbio CLI.
import json
import re
from pathlib import Path

from srbio.config import validate_config

CFG = validate_config(config, source="config")  # unknown keys fail here, named
RES = CFG.results
SIM = {s.name: s for s in CFG.simulate}
PAIRS = {p.name: p for p in CFG.pairs}
VOLUMES = {v.name: v for v in CFG.predict.volumes}
PREDICTIONS = [f"{RES}/predict/{name}.ome.zarr" for name in VOLUMES]

# the CLI reads the validated configuration (with any --config overrides) from this file;
# it is rewritten only when the configuration changes
CONFIG_JSON = f"{RES}/config.resolved.json"
_resolved = CFG.model_dump_json(by_alias=True, indent=2)
_path = Path(CONFIG_JSON)
if not _path.exists() or _path.read_text() != _resolved:
    _path.parent.mkdir(parents=True, exist_ok=True)
    _path.write_text(_resolved)

# run the package of this checkout, in whichever environment (venv or conda) runs the job
shell.prefix(f"export PYTHONPATH={workflow.basedir}:${{{{PYTHONPATH:-}}}}; ")


def spacing_flag(flag, values):
    return f"{flag} {' '.join(str(v) for v in values)}" if values else ""


def folders(paths):
    """The folders holding ``paths`` (derived from a job's inputs), space-separated."""
    return " ".join(str(Path(p).parent) for p in paths)


def section(name):
    """JSON of one config section: a rule's params, so changing it re-runs that rule."""
    return json.dumps(CFG.model_dump(by_alias=True)[name], sort_keys=True)


wildcard_constraints:
    sim="|".join(map(re.escape, SIM)) or "NO_SIMULATION",
    pair="|".join(map(re.escape, PAIRS)),
    volume="|".join(map(re.escape, VOLUMES)) or "NO_VOLUME",
