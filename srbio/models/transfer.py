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
    sliced: list[str] = field(default_factory=list)  # copied: the leading channels of wider ones

    def summary(self) -> str:
        """One line: how many tensors were copied (sliced), left new, reshaped and unused."""
        sliced = f" ({len(self.sliced)} of them the leading channels of wider ones)" \
            if self.sliced else ""
        return (f"copied {len(self.copied)} tensors, left {len(self.new)} new "
                f"({len(self.reshaped)} of them exist in the source with another shape), "
                f"{len(self.unused)} of the source unused{sliced}")


def copy_matching(net: nn.Module, source: Mapping[str, torch.Tensor]) -> Transfer:
    """Copy into ``net`` every tensor of ``source`` whose name matches, whole or sliced.

    The networks name their weights by position (e.g. RCAN's ``body.<g>.blocks.<b>``), so a
    pruned RCAN gets the first G groups and B blocks of a larger one. A network with fewer
    channels gets the leading channels (the first output and input channels of every tensor,
    the same indices throughout, so the kept channels still feed each other; a pixel shuffle's
    first ``C·r²`` channels are its first ``C``): the channel-pruned start that fine-tuning
    then repairs. Tensors larger than the source's, or differing in a kernel size, stay new.
    Buffers (BN statistics) are copied alike.

    Returns
    -------
    Transfer
        The names copied (and of them, sliced), left new, of another shape, and unused.
    """
    own = net.state_dict()
    done = Transfer()
    for name, value in own.items():
        theirs = source.get(name)
        part = _leading(theirs, tuple(value.shape)) if theirs is not None else None
        if part is not None:
            with torch.no_grad():
                value.copy_(part.to(value.dtype))
            done.copied.append(name)
            if tuple(theirs.shape) != tuple(value.shape):
                done.sliced.append(name)
        else:
            done.new.append(name)
            if theirs is not None:
                done.reshaped.append(name)
    done.unused = [name for name in source if name not in own]
    return done


def _leading(tensor: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor | None:
    """``tensor`` cut to ``shape`` along its first two (channel) dimensions, or None.

    None when the ranks differ, a kept dimension is larger than the source's, or the
    dimensions past the channels (kernel sizes) differ.
    """
    if tensor.dim() != len(shape) or tuple(tensor.shape[2:]) != shape[2:]:
        return None
    if any(want > have for want, have in zip(shape[:2], tensor.shape[:2], strict=False)):
        return None
    return tensor[tuple(slice(0, n) for n in shape[:2])]
