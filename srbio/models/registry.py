"""The networks srbio can build, described without importing torch.

The configuration schema, the command line and the model file check names, presets, parameter
names and scales against this table before any heavy import. Adding a network = one module in
``srbio/models`` (a ``torch.nn.Module`` taking ``scale``, ``in_channels`` and its parameters as
keywords, exposing them as ``.config``) + one entry here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

ParamValue = int | float | str


@dataclass(frozen=True)
class NetworkInfo:
    """What srbio knows about one network before building it.

    Attributes
    ----------
    name : str
        Name used in ``model.name`` and in model files.
    module, builder : str
        Where the ``torch.nn.Module`` class lives (imported only when building).
    scales : tuple of int
        Upsampling factors the network's upsampler supports.
    presets : mapping
        Named parameter sets; ``default_preset`` is used when none is given.
    parameters : tuple of str
        Parameter names accepted besides ``scale`` and ``in_channels``.
    defaults : mapping
        Values of parameters a preset may leave out (parameters added after model files were
        written, e.g. RCAN's ``res_scale``: such files still build the network they were
        trained with).
    """

    name: str
    module: str
    builder: str
    scales: tuple[int, ...]
    presets: Mapping[str, Mapping[str, ParamValue]]
    parameters: tuple[str, ...]
    default_preset: str
    description: str = ""
    reference: str = field(default="", compare=False)
    min_input: int = 1  # smallest input side (pixels) the network accepts
    dims: int = 2  # 2: takes (N, C, H, W) planes; 3: (N, C, D, H, W) volumes
    defaults: Mapping[str, ParamValue] = field(default_factory=dict)


NETWORKS: dict[str, NetworkInfo] = {
    "rcan": NetworkInfo(
        name="rcan", module="srbio.models.rcan", builder="RCAN", scales=(1, 2, 3, 4, 8),
        presets={
            "tiny": {"n_groups": 2, "n_blocks": 2, "n_feats": 16, "reduction": 8},
            "small": {"n_groups": 5, "n_blocks": 3, "n_feats": 32, "reduction": 16},
            "paper": {"n_groups": 10, "n_blocks": 20, "n_feats": 64, "reduction": 16},
            # pruned as RCAN practitioners do, each step from the previous one: blocks first
            # (B 20 → 10 → 5), then groups (G 10 → 5), then channels (C 64 → 48 → 32).
            # Fine-tune them from a larger model with train.init_from.
            "pruned-b10": {"n_groups": 10, "n_blocks": 10, "n_feats": 64, "reduction": 16},
            "pruned-b5": {"n_groups": 10, "n_blocks": 5, "n_feats": 64, "reduction": 16},
            "pruned-g5": {"n_groups": 5, "n_blocks": 5, "n_feats": 64, "reduction": 16},
            "pruned-c48": {"n_groups": 5, "n_blocks": 5, "n_feats": 48, "reduction": 16},
            "pruned-c32": {"n_groups": 5, "n_blocks": 5, "n_feats": 32, "reduction": 16},
        },
        parameters=("n_groups", "n_blocks", "n_feats", "reduction", "res_scale"),
        defaults={"res_scale": 1.0},
        default_preset="small",
        description="residual channel attention network",
        reference="Zhang et al., ECCV 2018",
    ),
    "rcan3d": NetworkInfo(
        name="rcan3d", module="srbio.models.rcan3d", builder="RCAN3D", scales=(1, 2, 3, 4),
        presets={
            "tiny": {"n_groups": 2, "n_blocks": 2, "n_feats": 16, "reduction": 8},
            "small": {"n_groups": 3, "n_blocks": 3, "n_feats": 24, "reduction": 8},
        },
        parameters=("n_groups", "n_blocks", "n_feats", "reduction", "res_scale", "z_scale"),
        defaults={"res_scale": 1.0, "z_scale": 1},
        default_preset="tiny",
        description="3D RCAN (Conv3d, channel attention over the volume, lateral scale and "
                    "z_scale)",
        reference="Zhang et al., ECCV 2018, in 3D (as in 3D-RCAN, Chen et al., Nat. Methods 2021)",
        dims=3,
    ),
    "edsr": NetworkInfo(
        name="edsr", module="srbio.models.edsr", builder="EDSR", scales=(1, 2, 3, 4, 8),
        presets={
            "baseline": {"n_blocks": 16, "n_feats": 64, "res_scale": 1.0},
            "large": {"n_blocks": 32, "n_feats": 256, "res_scale": 0.1},
        },
        parameters=("n_blocks", "n_feats", "res_scale"),
        default_preset="baseline",
        description="enhanced deep residual network (no batch norm, residual scaling)",
        reference="Lim et al., CVPRW 2017",
    ),
    "rlfn": NetworkInfo(
        name="rlfn", module="srbio.models.rlfn", builder="RLFN", scales=(1, 2, 3, 4, 8),
        presets={
            "paper": {"n_blocks": 6, "n_feats": 52, "mid_feats": 52, "esa_feats": 16},
            "ntire": {"n_blocks": 4, "n_feats": 46, "mid_feats": 48, "esa_feats": 16},
        },
        parameters=("n_blocks", "n_feats", "mid_feats", "esa_feats"),
        default_preset="paper",
        description="residual local feature network (spatial attention, one sub-pixel conv)",
        reference="Kong et al., CVPRW 2022 (NTIRE 2022 efficient SR winner: preset ntire)",
        min_input=15,
    ),
    "a2n": NetworkInfo(
        name="a2n", module="srbio.models.a2n", builder="A2N", scales=(1, 2, 3, 4, 8),
        presets={"paper": {"n_blocks": 16, "n_feats": 40, "up_feats": 24, "reduction": 4,
                           "temperature": 30.0}},
        parameters=("n_blocks", "n_feats", "up_feats", "reduction", "temperature"),
        default_preset="paper",
        description="attention in attention network (attention dropout, interpolation "
                    "upsampling, bilinear global skip)",
        reference="Chen et al., 2021 (arXiv:2104.09497)",
    ),
    "srresnet": NetworkInfo(
        name="srresnet", module="srbio.models.srresnet", builder="SRResNet",
        scales=(1, 2, 3, 4, 8),
        presets={"paper": {"n_blocks": 16, "n_feats": 64, "batch_norm": 1},
                 "nobn": {"n_blocks": 16, "n_feats": 64, "batch_norm": 0}},
        parameters=("n_blocks", "n_feats", "batch_norm"),
        default_preset="paper",
        description="SRResNet, the SRGAN generator (train.adversarial trains it as SRGAN)",
        reference="Ledig et al., CVPR 2017",
    ),
}


def network_info(name: str) -> NetworkInfo:
    """The registry entry of ``name``; ValueError naming the available networks otherwise."""
    try:
        return NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r} (available: {', '.join(sorted(NETWORKS))})"
                         ) from None


def check_scale(name: str, scale: int) -> None:
    """Raise ValueError when network ``name`` cannot upsample by ``scale``."""
    info = network_info(name)
    if scale not in info.scales:
        raise ValueError(f"network {name!r} supports scale {', '.join(map(str, info.scales))}; "
                         f"got {scale}")


def resolve_params(name: str, preset: str | None, overrides: Mapping[str, ParamValue]
                   ) -> dict[str, ParamValue]:
    """Parameters of network ``name``: its ``preset`` (or none) updated by ``overrides``.

    Raises
    ------
    ValueError
        For an unknown preset or parameter name, naming what is allowed.
    """
    info = network_info(name)
    if preset is not None and preset not in info.presets:
        raise ValueError(f"unknown preset {preset!r} of network {name!r} "
                         f"(available: {', '.join(info.presets)})")
    unknown = sorted(set(overrides) - set(info.parameters))
    if unknown:
        raise ValueError(f"network {name!r} has no parameter {', '.join(map(repr, unknown))} "
                         f"(parameters: {', '.join(info.parameters)})")
    params: dict[str, ParamValue] = dict(info.defaults)
    params.update(info.presets[preset] if preset is not None else {})
    for key, value in overrides.items():  # a count stays a whole number
        reference = params.get(key, info.presets[info.default_preset].get(key))
        if isinstance(reference, int) and not isinstance(reference, bool) and (
                isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"parameter {key!r} of network {name!r} is a whole number "
                             f"(got {value!r})")
    params.update(overrides)
    missing = sorted(set(info.parameters) - set(params))
    if missing:
        raise ValueError(f"network {name!r} needs {', '.join(missing)} (give a preset or "
                         f"every parameter)")
    return params
