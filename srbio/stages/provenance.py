"""``srbio provenance PATH``: what made an srbio output, step by step back through its inputs.

Any output srbio writes leads to a description of the run that made it:

- a JSON record (tagged ``srbio.<kind>/<n>``) is one;
- a stage folder, or any file in one (a TIFF, ``model.pt``, ``qc.png``), is described by the
  folder's record (the folder carries :data:`~srbio.io.outputs.MARKER` naming its stage);
- a prediction store by ``<name>.json`` beside it (or the record in its attributes), a patch
  store by ``patches.json`` beside it;
- a model file away from its train folder by its own header; a report by its last line.

Each record says (fields :data:`~srbio.io.records.LINEAGE`, absent from records of older
srbio: "not recorded") which srbio, git revision and Python made it and when, the config
sections the run used, and every input as it was read with its checksum
(:mod:`srbio.io.checksums`). Inputs that are srbio outputs themselves are described in turn,
so a prediction leads to its model, the model to its patches and normalisation, those to the
crops, registrations and simulations. Only small records are read: nothing is hashed unless
asked (``verify``), and then with the method recorded, so a big store costs no more than it did
when it was recorded.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srbio.io.checksums import checksum
from srbio.io.outputs import MARKER, owner, read_json_or_none
from srbio.io.records import (
    CropFiles,
    EnhanceFiles,
    EvaluateFiles,
    ExportFiles,
    Folder,
    RegisterFiles,
    Report,
    SimulateFiles,
    TrainFiles,
    patches_record_path,
    prediction_record_path,
    read_json,
)

EXPECTED = ("expected an output of srbio: a stage record (a JSON file tagged srbio.<kind>/<n>), "
            f"a stage folder or a file in one (the folder holds {MARKER}), a prediction or patch "
            "store (zarr attributes srbio.output), a model file of `srbio train`, or a report of "
            "`srbio report`")
STAGE_FOLDERS: dict[str, type[Folder]] = {
    "simulate": SimulateFiles, "register": RegisterFiles, "crop": CropFiles,
    "enhance": EnhanceFiles, "train": TrainFiles, "evaluate": EvaluateFiles,
    "export": ExportFiles}
# the path fields of records written before records listed their inputs
_LINKS = {"simulation": ("hr",), "registration": ("fixed", "moving", "truth"),
          "crop": ("registration",), "enhancement": ("source",), "evaluation": ("model",),
          "export": ("model",), "prediction": ("model", "input")}
_MADE = ("created", "srbio", "git", "python", "torch")


class NotAnOutput(ValueError):
    """A path srbio did not write."""


@dataclass
class Found:
    """Where the description of an srbio output lies, and what it says (raw JSON fields)."""

    key: Path  # one per step: the record, store, model file or report read
    stage: str
    output: Path  # what the step made (a folder, store or file)
    record: Path | None  # the file the description was read from
    data: dict[str, Any] | None  # None: the run left no record
    note: str = ""


def _tagged(path: Path) -> dict[str, Any] | None:
    """A JSON file's fields when it is an srbio record (tag ``srbio.<kind>/<n>``), else None."""
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return None
    tag = data.get("record") if isinstance(data, dict) else None
    return data if isinstance(tag, str) and tag.startswith("srbio.") else None


def _record(path: Path, stage: str, output: Path, note: str = "") -> Found:
    """The step a record file describes; a crop record of an enhanced pair is its enhancement."""
    data = _tagged(path)
    if data is None:
        raise ValueError(f"{path}: not a readable srbio record; {output} is an srbio {stage} "
                         f"output whose record is damaged")
    if isinstance(data.get("enhancement"), dict):
        stage, data = "enhance", data["enhancement"]
    return Found(path.resolve(), stage, output, path, data, note)


def _stage_folder(folder: Path, stage: str) -> Found:
    files = STAGE_FOLDERS.get(stage)
    names = ([EnhanceFiles.provenance.name] if stage == "enhance" else []) + (
        [files.record.name] if files is not None and "record" in files.files() else [])
    if stage == "register":
        names.append(RegisterFiles.failed_record.name)
    for name in names:
        if (folder / name).is_file():
            return _record(folder / name, stage, folder)
    return Found(folder.resolve(), stage, folder, None, None,
                 f"no record in the folder ({', '.join(names) or 'none expected'}): the run did "
                 f"not finish")


def _store(store: Path, attrs: dict[str, Any]) -> Found | None:
    kind = attrs.get("output")
    if kind == "patches":
        beside = patches_record_path(store)
        if beside.is_file():
            return _record(beside, "patches", store)
        return Found(store.resolve(), "patches", store, None, None, f"{beside.name} is missing")
    if kind == "predict":
        beside = prediction_record_path(store)
        if beside.is_file() and _tagged(beside) is not None:
            return _record(beside, "predict", store)
        if isinstance(attrs.get("prediction"), dict):
            return Found(store.resolve(), "predict", store, store / "zarr.json",
                         attrs["prediction"], f"{beside.name} is missing: the record in the "
                         f"store's attributes")
        return Found(store.resolve(), "predict", store, store / "zarr.json",
                     {"provenance": attrs.get("provenance")},
                     "incomplete: the prediction has not finished (no record yet)")
    if kind == "write":
        return Found(store.resolve(), "write", store, store / "zarr.json",
                     {"provenance": attrs.get("provenance")},
                     "an image written from a napari layer: its inputs are not recorded")
    return None


def _model_file(path: Path) -> Found:
    from srbio.io.modelfile import read_model_file

    header, _ = read_model_file(path)
    return Found(path.resolve(), "train", path, path, header.model_dump(mode="json"),
                 "the model file's own header (no training.json beside it)")


def _own(path: Path) -> Found | None:
    """The description of ``path`` when srbio wrote it as a whole, else None."""
    if path.is_dir():
        meta = read_json_or_none(path / "zarr.json") or {}
        attrs = (meta.get("attributes") or {}).get("srbio")
        store = _store(path, attrs) if isinstance(attrs, dict) else None
        if store is not None or not (path / MARKER).is_file():
            return store
        stage = owner(path)
        return _stage_folder(path, stage) if stage else None
    if path.suffix == ".json" and _tagged(path) is not None:
        return _record(path, owner(path) or "?", path)
    if path.suffix == ".md" and owner(path) == "report":
        report = Report.from_report(path)
        return Found(path.resolve(), "report", path, path,
                     report.model_dump(mode="json") if report else None)
    if path.suffix in (".pt", ".pth") and not (path.parent / TrainFiles.record.name).is_file():
        with contextlib.suppress(ValueError):
            return _model_file(path)
    return None


def locate(path: str | os.PathLike) -> Found:
    """The description of the srbio output ``path`` is, or lies in.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    NotAnOutput
        When srbio did not write it, naming it and what was expected.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found")
    absolute = path.absolute()
    for candidate in (absolute, *absolute.parents):
        found = _own(candidate)
        if found is not None:
            if candidate != absolute:
                found.note = (f"{absolute.relative_to(candidate)} is part of this output"
                              + (f"; {found.note}" if found.note else ""))
            return found
    what = "a folder" if path.is_dir() else f"a file of {path.stat().st_size} bytes"
    raise NotAnOutput(f"{path}: not an output of srbio ({what} without srbio's marks); "
                      f"{EXPECTED}{_holds(path)}")


def _holds(folder: Path, limit: int = 50) -> str:
    """A hint naming srbio outputs in a folder given instead of one (a results folder)."""
    if not folder.is_dir():
        return ""
    names = []
    for entry in sorted(folder.iterdir())[:limit]:
        with contextlib.suppress(OSError, ValueError):
            if _own(entry) is not None or (entry.is_dir() and any(
                    _own(e) is not None for e in sorted(entry.iterdir())[:limit])):
                names.append(entry.name)
    return (f". It holds srbio outputs ({', '.join(names[:6])}{', …' if len(names) > 6 else ''}):"
            f" give one of them" if names else "")


def _resolve(recorded: str, found: Found) -> Path | None:
    """A path a record holds, where it exists now (None: nowhere).

    An absolute path as it is; a relative one (a workflow records paths relative to its
    working folder) from the folders holding the record, nearest first, then from here.
    """
    path = Path(recorded)
    if path.is_absolute():
        return path if path.exists() else None
    near = (found.record or found.output).absolute().parent
    for base in (near, *near.parents, Path.cwd()):
        if (base / path).exists():
            return base / path
    return None


def _legacy_inputs(data: dict[str, Any], kind: str) -> list[dict[str, Any]] | None:
    """Inputs of a record written before records listed them: its path fields, unhashed."""
    prov = data.get("provenance") or {}
    if kind in ("training", "model") and isinstance(prov.get("inputs"), dict):
        return [{"role": Path(p).name, "path": p, "sha256": None, "recorded_digest": d}
                for p, d in prov["inputs"].items()]
    links = [(k, data.get(k)) for k in _LINKS.get(kind, ())]
    return [{"role": k, "path": v, "sha256": None} for k, v in links if isinstance(v, str)] or None


def _step(found: Found) -> dict[str, Any]:
    """One step of the chain as JSON-ready values (its inputs not yet linked)."""
    data = found.data or {}
    tag = data.get("record")
    kind = tag.removeprefix("srbio.").split("/")[0] if isinstance(tag, str) else ""
    prov = data.get("provenance") if isinstance(data.get("provenance"), dict) else None
    config = data.get("config")
    if config is None and prov is not None:  # training.json, model files: in provenance
        config = prov.get("config")
    inputs = data.get("inputs")
    recorded = isinstance(inputs, list)
    if recorded:
        inputs = [dict(i) for i in inputs if isinstance(i, dict)]
    else:
        inputs = _legacy_inputs(data, kind)
    return {"stage": found.stage, "output": str(found.output),
            "record": None if found.record is None else str(found.record), "tag": tag,
            "note": found.note or None,
            "made": {k: prov.get(k) for k in _MADE if k in prov} if prov else None,
            "config": config if isinstance(config, dict) else None,
            "inputs_recorded": recorded, "inputs": inputs}


def _link(inp: dict[str, Any], found: Found, ids: dict[Path, int], todo: list[Found]) -> None:
    """Resolve one input; when srbio made it, its step (found now or earlier)."""
    path = _resolve(str(inp.get("path")), found) if inp.get("path") else None
    inp["resolved"] = None if path is None else str(path)
    inp["step"] = None
    if path is None:
        inp["origin"] = "missing"
        return
    try:
        parent = locate(path)
    except NotAnOutput:
        inp["origin"] = "external"
        return
    except (OSError, ValueError) as exc:
        inp["origin"], inp["problem"] = "unreadable", str(exc)
        return
    inp["origin"] = "srbio"
    if parent.key not in ids:
        ids[parent.key] = len(ids) + 1
        todo.append(parent)
    inp["step"] = ids[parent.key]


def _verify(inp: dict[str, Any]) -> None:
    """Recompute a recorded checksum the way it was recorded: unchanged, changed or missing."""
    if not inp.get("sha256"):
        inp["verified"] = "not recorded"
    elif inp.get("resolved") is None:
        inp["verified"] = "missing"
    else:
        try:
            now = checksum(inp["resolved"], inp.get("method"))
        except (OSError, ValueError):
            inp["verified"] = "missing"
            return
        inp["verified"] = "unchanged" if now["sha256"] == inp["sha256"] else "changed"


def trace(path: str | os.PathLike, *, verify: bool = False) -> dict[str, Any]:
    """What made ``path``: every step back through its inputs, as JSON-ready values.

    Returns ``{"path", "steps": [...], "verify"}``; each step has ``step`` (its number),
    ``stage``, ``output``, ``record``, ``tag``, ``note``, ``made`` (time, srbio version, git
    revision, Python, torch; None: not recorded), ``config`` (sections used; None: not
    recorded), ``inputs_recorded`` and ``inputs`` (role, path, sha256, method, size,
    resolved, origin ``srbio`` / ``external`` / ``missing``, and ``step`` of the one that made
    it). With ``verify`` every recorded checksum is recomputed: each input gets ``verified``
    and ``verify`` sums them up (``changed`` and ``missing`` list the paths).

    Raises
    ------
    FileNotFoundError, NotAnOutput, ValueError
        Naming ``path`` when it does not exist or srbio did not write it.
    """
    first = locate(path)
    ids, todo, steps = {first.key: 1}, [first], []
    while todo:
        found = todo.pop(0)
        step = {"step": ids[found.key], **_step(found)}
        for inp in step["inputs"] or []:
            _link(inp, found, ids, todo)
            if verify:
                _verify(inp)
        steps.append(step)
    return {"path": str(path), "steps": steps, "verify": _summary(steps) if verify else None}


def _summary(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Input files by what checking them found.

    A file read by several steps counts once: as changed (or missing) when it is for any.
    """
    found: dict[str, set[str]] = {}
    for i in (i for s in steps for i in s["inputs"] or []):
        found.setdefault(i.get("resolved") or str(i.get("path")), set()).add(i["verified"])
    return {"unchanged": sum(v == {"unchanged"} for v in found.values()),
            "not recorded": sum(v == {"not recorded"} for v in found.values()),
            "changed": sorted(p for p, v in found.items() if "changed" in v),
            "missing": sorted(p for p, v in found.items() if "missing" in v)}


# ----------------------------------------------------------------------------- text

NOT_RECORDED = "not recorded"


def _here(path: Any) -> str:
    """A path as shown: relative to the current folder when inside it, else absolute."""
    text = str(path)
    with contextlib.suppress(ValueError):
        return str(Path(text).relative_to(Path.cwd()))
    return text


def _made(made: dict[str, Any] | None) -> list[str]:
    if not made:
        return [f"    made:    {NOT_RECORDED} (written before srbio recorded it)"]
    torch = f", torch {made['torch']}" if made.get("torch") else ""
    return [f"    made:    {made.get('created', '?')} by srbio {made.get('srbio', '?')} "
            f"(Python {made.get('python', '?')}{torch})",
            f"    git:     {made.get('git') or 'none (srbio was not run from a git checkout)'}"]


def _config(config: dict[str, Any] | None) -> list[str]:
    import yaml

    if config is None:
        return [f"    config:  {NOT_RECORDED}"]
    if not config:
        return ["    config:  none (the stage reads no config section)"]
    lines = ["    config:"]
    for name, values in config.items():  # one flow mapping per section
        text = yaml.safe_dump({name: values}, sort_keys=False, default_flow_style=True,
                              width=88, allow_unicode=True).strip()
        text = text[1:-1] if text.startswith("{") and text.endswith("}") else text
        lines += [f"      {line}" for line in text.splitlines()]
    return lines


def _input(inp: dict[str, Any], stages: dict[int, str]) -> list[str]:
    where = {"srbio": f"→ [{inp.get('step')}] {stages.get(inp.get('step') or 0, '')}",
             "external": "(not an srbio output)", "missing": "(not found)",
             "unreadable": f"(unreadable: {inp.get('problem')})"}.get(inp.get("origin", ""), "")
    shown = _here(inp.get("resolved") or inp.get("path"))
    lines = [f"      {inp.get('role')}: {shown}  {where}".rstrip()]
    if inp.get("resolved") and Path(inp["resolved"]).resolve() != Path(inp["path"]).resolve():
        lines.append(f"          recorded as {inp.get('path')}")
    if inp.get("sha256"):
        size = f"{inp['size']:,} bytes" if isinstance(inp.get("size"), int) else "?"
        lines.append(f"          sha256 {inp['sha256']} ({inp.get('method')}, {size})")
    else:
        old = f" (16-digit digest {inp['recorded_digest']})" if inp.get("recorded_digest") else ""
        lines.append(f"          sha256 {NOT_RECORDED}{old}")
    verified = inp.get("verified")
    if verified:
        lines[-1] += f"  [{verified.upper() if verified == 'changed' else verified}]"
    return lines


def _block(step: dict[str, Any], stages: dict[int, str]) -> list[str]:
    lines = [f"[{step['step']}] {step['stage']}  {_here(step['output'])}"]
    if step["record"]:
        lines.append(f"    record:  {_here(step['record'])}"
                     + (f" ({step['tag']})" if step["tag"] else ""))
    if step["note"]:
        lines.append(f"    note:    {step['note']}")
    lines += _made(step["made"])
    lines += _config(step["config"])
    if step["inputs"] is None:
        lines.append(f"    inputs:  {NOT_RECORDED}")
    else:
        lines.append("    inputs:" if step["inputs_recorded"] else
                     f"    inputs:  (checksums {NOT_RECORDED}: written before srbio recorded them)")
        for inp in step["inputs"]:
            lines += _input(inp, stages)
    return lines


def format_trace(result: dict[str, Any]) -> str:
    """The human-readable text of :func:`trace`: one block per step of the chain."""
    stages = {s["step"]: s["stage"] for s in result["steps"]}
    lines = [f"provenance of {result['path']}", ""]
    for step in result["steps"]:
        lines += [*_block(step, stages), ""]
    summary = result.get("verify")
    if summary is not None:
        lines.append(f"verify: {summary['unchanged']} input file(s) unchanged, "
                     f"{len(summary['changed'])} changed, {len(summary['missing'])} missing, "
                     f"{summary['not recorded']} without a recorded checksum")
        lines += [f"  changed since: {p}" for p in summary["changed"]]
        lines += [f"  missing: {p}" for p in summary["missing"]]
    return "\n".join(lines).rstrip() + "\n"


def changed(result: dict[str, Any]) -> bool:
    """Whether a verified trace found an input changed or missing."""
    summary = result.get("verify") or {}
    return bool(summary.get("changed") or summary.get("missing"))

