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


def test_fewer_channels_leave_the_convolutions_new_and_say_so():
    big = build_network("rcan", scale=2, params={"n_groups": 2, "n_blocks": 2, "n_feats": 16,
                                                 "reduction": 4})
    narrow = build_network("rcan", scale=2, params={"n_groups": 2, "n_blocks": 2, "n_feats": 8,
                                                    "reduction": 4})
    before = {k: v.clone() for k, v in narrow.state_dict().items()}
    done = copy_matching(narrow, big.state_dict())
    assert "head.weight" in done.reshaped and "head.weight" in done.new
    assert torch.equal(narrow.state_dict()["head.weight"], before["head.weight"])
    assert done.copied == ["tail.bias"]  # the only tensor of the same shape (1 output channel)
    assert done.summary().startswith("copied 1 tensors, left ")
