"""The model file: any registered network round-trips; broken files fail naming the problem."""

import pytest
import torch

from srbio.inference import load_model
from srbio.io.modelfile import read_model_file, save_model_file
from srbio.io.records import ModelHeader, NetworkSpec, Normalisation, PixelSizes, Range
from srbio.models import build_network

NORM = Normalisation(lr=Range(vmin=1, vmax=2), hr=Range(vmin=3, vmax=4))


def _save(tmp_path, net, name="m.pt", **kw):
    header = ModelHeader(network=NetworkSpec.from_config(net.config), normalisation=NORM, **kw)
    return save_model_file(tmp_path / name, header, net.state_dict())


def test_model_file_round_trips_network_scale_normalisation_and_pixel_sizes(tmp_path):
    torch.manual_seed(0)
    net = build_network("rcan", scale=3, preset="tiny", params={"n_feats": 8}).eval()
    path = _save(tmp_path, net, spacing=PixelSizes(lr=[0.3, 0.6, 0.6], hr=[0.3, 0.2, 0.2]),
                 patch_size=24, provenance={"note": "test"})
    loaded, header = load_model(path)
    x = torch.rand(1, 1, 16, 16)
    torch.testing.assert_close(loaded(x), net(x))
    assert header.network == NetworkSpec(name="rcan", scale=3, in_channels=1,
                                         params={"n_groups": 2, "n_blocks": 2, "n_feats": 8,
                                                 "reduction": 8, "res_scale": 1.0})
    assert header.normalisation.hr.pair == (3.0, 4.0)
    assert header.spacing.lr == [0.3, 0.6, 0.6] and header.patch_size == 24


def test_a_version_1_model_file_still_loads(tmp_path):
    torch.manual_seed(0)
    net = build_network("rcan", scale=2, preset="tiny").eval()
    torch.save({"format": "srbio-model/1", "network": dict(net.config),
                "state_dict": net.state_dict(), "normalisation": {"lr": [1, 2], "hr": [3, 4]},
                "spacing": None, "provenance": {"srbio": "0.1.0"}}, tmp_path / "v1.pt")
    loaded, header = load_model(tmp_path / "v1.pt")
    x = torch.rand(1, 1, 8, 8)
    torch.testing.assert_close(loaded(x), net(x))
    assert header.normalisation.lr.pair == (1.0, 2.0) and header.network.scale == 2


def test_broken_model_files_fail_with_a_message_naming_them(tmp_path):
    net = build_network("rcan", scale=2, preset="tiny")
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="bad.pt: not a readable srbio model file"):
        read_model_file(tmp_path / "bad.pt")
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt: not an srbio model file"):
        read_model_file(tmp_path / "other.pt")
    torch.save({"format": "srbio-model/2", "state_dict": net.state_dict()}, tmp_path / "nohdr.pt")
    with pytest.raises(ValueError, match="nohdr.pt: incomplete srbio model file"):
        read_model_file(tmp_path / "nohdr.pt")
    # a header that disagrees with the weights (scale 3 header, scale 2 weights)
    spec = NetworkSpec.from_config({**net.config, "scale": 3})
    save_model_file(tmp_path / "mismatch.pt", ModelHeader(network=spec, normalisation=NORM),
                    net.state_dict())
    with pytest.raises(ValueError, match="mismatch.pt: the weights do not fit"):
        load_model(tmp_path / "mismatch.pt")
    spec = NetworkSpec(name="srgan", scale=2)
    save_model_file(tmp_path / "unknown.pt", ModelHeader(network=spec, normalisation=NORM),
                    net.state_dict())
    with pytest.raises(ValueError, match="unknown.pt: cannot build its network 'srgan'"):
        load_model(tmp_path / "unknown.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_model(tmp_path / "missing.pt")


@pytest.mark.parametrize(("name", "params"), [
    ("edsr", {"n_blocks": 2, "n_feats": 8, "res_scale": 0.1}),
    ("rlfn", {"n_blocks": 1, "n_feats": 8, "mid_feats": 12, "esa_feats": 4})])
def test_every_network_round_trips_through_the_model_file(tmp_path, name, params):
    torch.manual_seed(0)
    net = build_network(name, scale=3, params=params).eval()
    loaded, header = load_model(_save(tmp_path, net))
    x = torch.rand(1, 1, 16, 17)
    torch.testing.assert_close(loaded(x), net(x))
    assert header.network.name == name and header.network.params == params
