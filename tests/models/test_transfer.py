"""Fine-tuning from a larger model: which weights are copied, and that they are."""

import torch

from srbio.models import build_network
from srbio.models.transfer import copy_matching


def test_a_pruned_rcan_takes_the_first_groups_and_blocks_of_the_paper_model():
    torch.manual_seed(0)
    big = build_network("rcan", scale=2, params={"n_groups": 4, "n_blocks": 6, "n_feats": 16,
                                                 "reduction": 4})
    small = build_network("rcan", scale=2, params={"n_groups": 2, "n_blocks": 3, "n_feats": 16,
                                                   "reduction": 4})
    done = copy_matching(small, big.state_dict())
    assert not done.new and not done.reshaped  # every tensor of the pruned model has a source
    assert "body.2.blocks.0.body.0.weight" in done.unused  # group 3 and blocks 4-6 dropped
    assert "body.0.blocks.3.body.0.weight" in done.unused
    for key in ("head.weight", "body.1.blocks.2.body.0.weight", "body.1.conv.weight",
                "body_conv.weight", "upsample.0.weight", "tail.weight"):
        assert torch.equal(small.state_dict()[key], big.state_dict()[key]), key


def test_fewer_channels_take_the_leading_channels_of_every_tensor():
    torch.manual_seed(0)
    big = build_network("rcan", scale=2, params={"n_groups": 2, "n_blocks": 2, "n_feats": 16,
                                                 "reduction": 4})
    narrow = build_network("rcan", scale=2, params={"n_groups": 2, "n_blocks": 2, "n_feats": 8,
                                                    "reduction": 4})
    done = copy_matching(narrow, big.state_dict())
    assert not done.new and "head.weight" in done.sliced and "tail.bias" not in done.sliced
    ours, theirs = narrow.state_dict(), big.state_dict()
    assert torch.equal(ours["head.weight"], theirs["head.weight"][:8])  # 1 → 16 becomes 1 → 8
    assert torch.equal(ours["tail.weight"], theirs["tail.weight"][:, :8])
    assert torch.equal(ours["upsample.0.weight"], theirs["upsample.0.weight"][:32, :8])
    assert done.summary().startswith(f"copied {len(ours)} tensors, left 0 new")
    assert done.summary().endswith(f"({len(done.sliced)} of them the leading channels of "
                                   "wider ones)")


def test_the_leading_channels_of_a_network_that_uses_only_them_compute_the_same():
    torch.manual_seed(0)  # the big network's channels 8-15 zeroed: the narrow one is exact
    big = build_network("edsr", scale=2, params={"n_blocks": 2, "n_feats": 16, "res_scale": 1.0})
    with torch.no_grad():
        for w in big.parameters():
            if w.dim() == 4 and w.shape[1] == 16:
                w[:, 8:] = 0  # no kept channel reads a dropped one
    narrow = build_network("edsr", scale=2, params={"n_blocks": 2, "n_feats": 8, "res_scale": 1.0})
    copy_matching(narrow, big.state_dict())
    x = torch.rand(1, 1, 12, 12)
    assert torch.allclose(narrow(x), big(x), atol=1e-5)


def test_a_wider_network_or_another_kernel_size_is_left_new():
    big = build_network("rcan", scale=2, params={"n_groups": 1, "n_blocks": 1, "n_feats": 8,
                                                 "reduction": 4})
    wide = build_network("rcan", scale=2, params={"n_groups": 1, "n_blocks": 1, "n_feats": 16,
                                                  "reduction": 4})
    before = {k: v.clone() for k, v in wide.state_dict().items()}
    done = copy_matching(wide, big.state_dict())
    assert "head.weight" in done.reshaped and "head.weight" in done.new
    assert torch.equal(wide.state_dict()["head.weight"], before["head.weight"])
    assert done.copied == ["tail.bias"]  # the only tensor of the same shape (1 output channel)
