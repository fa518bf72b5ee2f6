"""Start a network from another one's weights (fine-tuning a pruned or a related network)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class Transfer:
    """What :func:`copy_matching` did, by parameter name."""

    copied: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)  # in the network, not (or not so) in the source
    unused: list[str] = field(default_factory=list)  # in the source, not in the network
    reshaped: list[str] = field(default_factory=list)  # same name, another shape: left new

    def summary(self) -> str:
        """One line: how many tensors were copied, left new, reshaped and unused."""
        return (f"copied {len(self.copied)} tensors, left {len(self.new)} new "
                f"({len(self.reshaped)} of them exist in the source with another shape), "
                f"{len(self.unused)} of the source unused")


def copy_matching(net: nn.Module, source: Mapping[str, torch.Tensor]) -> Transfer:
    """Copy into ``net`` every tensor of ``source`` whose name and shape match.

    The networks name their weights by position (e.g. RCAN's ``body.<g>.blocks.<b>``), so a
    pruned RCAN gets the first G groups and B blocks of a larger one; with fewer channels, the
    convolutions differ in shape and stay new. Buffers (BN statistics) are copied alike.

    Returns
    -------
    Transfer
        The names copied, left new, of another shape, and unused.
    """
    own = net.state_dict()
    done = Transfer()
    for name, value in own.items():
        theirs = source.get(name)
        if theirs is not None and tuple(theirs.shape) == tuple(value.shape):
            with torch.no_grad():
                value.copy_(theirs.to(value.dtype))
            done.copied.append(name)
        else:
            done.new.append(name)
            if theirs is not None:
                done.reshaped.append(name)
    done.unused = [name for name in source if name not in own]
    return done
