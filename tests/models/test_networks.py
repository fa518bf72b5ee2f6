"""Every registered network: shapes at every scale, published parameter counts, learning."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from srbio.models import NETWORKS, build_network, count_parameters
from srbio.models.summary import describe, flops_per_output_pixel

SMALL = {"rcan": {"n_groups": 2, "n_blocks": 2, "n_feats": 16, "reduction": 4},
         "edsr": {"n_blocks": 2, "n_feats": 16, "res_scale": 1.0},
         "rlfn": {"n_blocks": 2, "n_feats": 16, "mid_feats": 16, "esa_feats": 8},
         "a2n": {"n_blocks": 2, "n_feats": 16, "up_feats": 12, "reduction": 4,
                 "temperature": 30.0},
         "srresnet": {"n_blocks": 2, "n_feats": 16, "batch_norm": 0},
         "rcan3d": {"n_groups": 1, "n_blocks": 2, "n_feats": 8, "reduction": 4}}


def _input(name, n=2, h=17, w=20):
    """A zero input of the network's dimensionality (3D: 5 planes)."""
    return torch.zeros(n, 1, *([5] if NETWORKS[name].dims == 3 else []), h, w)


def test_every_registered_network_has_a_small_test_configuration():
    assert set(SMALL) == set(NETWORKS)


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_output_shape_at_every_scale(name, scale):
    net = build_network(name, scale=scale, params=SMALL[name])
    x = _input(name)
    y = net(x)
    assert y.shape == (*x.shape[:-2], 17 * scale, 20 * scale)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_a_scale_the_network_cannot_do_is_named(name):
    with pytest.raises(ValueError, match=f"network '{name}' supports scale .*; got 5"):
        build_network(name, scale=5, params=SMALL[name])


def test_rcan3d_upsamples_z_when_asked_and_its_shuffle_matches_2d():
    from srbio.models.rcan3d import pixel_shuffle_3d

    net = build_network("rcan3d", scale=2, params={**SMALL["rcan3d"], "z_scale": 2})
    assert net(torch.zeros(1, 1, 4, 10, 12)).shape == (1, 1, 8, 20, 24)
    x = torch.rand(2, 12, 3, 5, 7)  # fz = 1: each plane shuffled as PixelShuffle does
    planes = torch.nn.functional.pixel_shuffle(x.permute(0, 2, 1, 3, 4).reshape(6, 12, 5, 7), 2)
    expected = planes.reshape(2, 3, 3, 10, 14).permute(0, 2, 1, 3, 4)
    torch.testing.assert_close(pixel_shuffle_3d(x, (1, 2, 2)), expected)
    with pytest.raises(ValueError, match=r"RCAN3D takes volumes \(N, C, D, H, W\), got shape "
                                         r"\(1, 1, 10, 12\)"):
        net(torch.zeros(1, 1, 10, 12))


@pytest.mark.parametrize(("name", "preset", "scale", "expected"), [
    ("edsr", "baseline", 2, 1_369_859),   # EDSR baseline ×2, RGB (Lim et al. 2017: 1.37 M)
    ("edsr", "large", 2, 40_729_603),     # EDSR ×2, RGB (40.7 M)
    ("rlfn", "ntire", 4, 317_218),        # NTIRE 2022 efficient-SR winner ×4, RGB (0.317 M)
    ("rlfn", "paper", 4, 543_740),        # RLFN ×4, RGB (Kong et al. 2022: 543 K)
    ("rcan", "paper", 2, 15_444_643),     # RCAN ×2, RGB (Zhang et al. 2018: ≈15.4 M)
    ("a2n", "paper", 2, 1_036_443),       # A2N ×2, RGB (Chen et al. 2021: 1036 K)
    ("a2n", "paper", 4, 1_047_459),       # A2N ×4, RGB (1047 K)
    ("srresnet", "paper", 4, 1_549_462),  # SRResNet ×4, RGB (Ledig et al. 2017: 1.5 M)
])
def test_reference_configurations_have_the_published_parameter_counts(name, preset, scale,
                                                                      expected):
    with torch.device("meta"):  # no memory for the 40 M weights
        net = build_network(name, scale=scale, preset=preset, in_channels=3)
    assert count_parameters(net) == expected


def test_rcan_paper_with_one_channel_and_the_pruned_presets_shrink_step_by_step():
    with torch.device("meta"):
        counts = {p: count_parameters(build_network("rcan", scale=2, preset=p))
                  for p in ("paper", "pruned-b10", "pruned-b5", "pruned-g5", "pruned-c48",
                            "pruned-c32")}
    assert counts["paper"] == 15_442_337  # the figure for 1 channel
    values = list(counts.values())
    assert values == sorted(values, reverse=True) and len(set(values)) == len(values)


def test_rcan_res_scale_scales_each_block_residual_and_defaults_to_one():
    net = build_network("rcan", scale=1, params=SMALL["rcan"])
    assert net.config["res_scale"] == 1.0  # old model files, written without it, still build
    torch.manual_seed(0)
    x = torch.rand(1, 1, 12, 12)
    block = net.body[0].blocks[0]
    delta = block.body(net.head(x))
    block.res_scale = 0.1
    assert torch.allclose(block(net.head(x)) - net.head(x), 0.1 * delta, atol=1e-6)


def test_the_srgan_discriminator_scores_patches_of_any_size():
    from srbio.models.discriminator import Discriminator

    d = Discriminator(n_feats=8)
    assert d(torch.zeros(3, 1, 48, 48)).shape == (3,)
    assert d(torch.zeros(2, 1, 17, 30)).shape == (2,)
    # paper width (64 → 512 channels, dense 1024), by hand: convs 4,685,376 + BN 3,712 +
    # dense 525,312 + 1,025 (the paper's flatten over 6×6 would add 18.4 M to the first dense)
    with torch.device("meta"):
        assert count_parameters(Discriminator(in_channels=3)) == 5_215_425


def test_rlfn_refuses_inputs_its_attention_cannot_pool():
    net = build_network("rlfn", scale=2, params=SMALL["rlfn"])
    with pytest.raises(ValueError, match="RLFN needs inputs of at least 15×15 pixels"):
        net(torch.zeros(1, 1, 12, 40))


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_each_network_overfits_one_batch_of_real_patches(name, sample):
    image, _ = sample
    hr = image[20, 100:196, 160:256].astype(np.float32)
    hr = (hr - hr.min()) / (hr.max() - hr.min())
    hr_batch = torch.from_numpy(np.stack([hr[:48, :48], hr[48:, 48:], hr[:48, 48:],
                                          hr[48:, :48]]))[:, None]
    if NETWORKS[name].dims == 3:  # 4 planes of the real volume around the same window
        vol = image[18:22, 100:196, 160:256].astype(np.float32)
        vol = (vol - vol.min()) / (vol.max() - vol.min())
        hr_batch = torch.from_numpy(np.stack([vol[:, :48, :48], vol[:, 48:, 48:],
                                              vol[:, :48, 48:], vol[:, 48:, :48]]))[:, None]
    lr_batch = torch.nn.functional.avg_pool2d(hr_batch.flatten(0, -3), 2).reshape(
        *hr_batch.shape[:-2], 24, 24)
    torch.manual_seed(0)
    net = build_network(name, scale=2, params=SMALL[name])
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = torch.nn.functional.l1_loss(net(lr_batch), hr_batch)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # measured after 150 steps: rcan 16 %, edsr 5 %, rlfn 8 %, srresnet 18 % of the first
    # loss, each within 3-22 % of bicubic's L1 (which it passes after ~300 steps). A2N starts
    # from its bilinear skip (first loss near bicubic's) and is at 0.97 × bicubic's L1.
    bicubic = torch.nn.functional.interpolate(lr_batch.flatten(0, -3)[:, None], scale_factor=2,
                                              mode="bicubic").reshape(hr_batch.shape)
    bicubic_l1 = float(torch.nn.functional.l1_loss(bicubic, hr_batch))
    if name == "a2n":
        assert losses[-1] < 0.99 * bicubic_l1 < losses[0], (losses[0], losses[-1], bicubic_l1)
    else:
        assert losses[-1] < 0.25 * losses[0], (name, losses[0], losses[-1])
    assert losses[-1] < 1.3 * bicubic_l1


def test_flops_per_output_pixel_match_the_measured_rcan_figures():
    # ../stack-notes: paper preset 7.65 M, G5 B3 C32 185 k, G2 B2 C16 17.6 k FLOP / output px
    assert flops_per_output_pixel("rcan", scale=2, preset="paper") == pytest.approx(7.65e6,
                                                                                  rel=0.01)
    assert flops_per_output_pixel("rcan", scale=2, preset="small") == pytest.approx(185e3,
                                                                                  rel=0.01)
    rows = {(r["name"], r["preset"]): r for r in describe(scale=2)}
    assert rows[("edsr", "large")]["parameters"] > rows[("edsr", "baseline")]["parameters"]


def test_srbio_models_json_is_a_contract():
    r = subprocess.run([sys.executable, "-m", "srbio", "models", "--scale", "4", "--json"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert {(row["name"], row["preset"]) for row in rows} >= {("rcan", "paper"),
                                                              ("edsr", "baseline"),
                                                              ("rlfn", "ntire")}
    for row in rows:
        assert {"name", "preset", "parameters", "flops_per_output_pixel"} <= set(row)
        assert row["parameters"] > 0 and row["flops_per_output_pixel"] > 0
