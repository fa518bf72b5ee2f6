"""How many processes train, and each one's share of a step's batch (no torch: checked first).

Under ``srun`` with several tasks, SLURM started one process per task: they train as one
Lightning DDP run, their number and nodes taken from SLURM's variables.
"""

from __future__ import annotations

import os


def process_layout(devices: int | str, strategy: str) -> tuple[int | str, int, str]:
    """Devices per node, nodes and strategy: SLURM's when ``srun`` started several tasks.

    ``srun --ntasks-per-node=T`` (on N nodes) starts one process per task: DDP with ``T``
    devices on each of ``N`` nodes, whatever ``train.devices`` says unless it disagrees.
    """
    env = os.environ
    if "SLURM_STEP_ID" not in env or _number("SLURM_NTASKS", 1) <= 1:
        return devices, 1, strategy
    tasks, nodes = _number("SLURM_NTASKS_PER_NODE", 0), _number("SLURM_NNODES", 1)
    if not tasks:
        raise ValueError(f"srun started {env['SLURM_NTASKS']} tasks without --ntasks-per-node "
                         "(SLURM_NTASKS_PER_NODE): srbio needs it to know the tasks of each node")
    if devices not in (1, "auto", tasks):
        raise ValueError(f"train.devices is {devices}, but srun started {tasks} tasks per node "
                         f"(SLURM_NTASKS_PER_NODE): one process per device; make them agree")
    return tasks, nodes, "ddp" if strategy == "auto" else strategy


def _number(name: str, default: int) -> int:
    """SLURM's variable ``name`` as a whole number (``default`` when it is not set)."""
    value = os.environ.get(name)
    try:
        return default if value is None else int(value)
    except ValueError:
        raise ValueError(f"SLURM variable {name} is {value!r}, expected a whole number") from None


def per_process_batch(batch_size: int, processes: int) -> int:
    """Each process's share of the patches of one step (``batch_size`` is the step's total).

    So a run on any number of processes takes the same steps over the same batches (the
    samplers interleave one order), and DDP's mean of the processes' gradients is the
    gradient of the whole batch.
    """
    if batch_size % processes:
        raise ValueError(f"train.batch_size {batch_size} is the patches of one step, shared by "
                         f"{processes} processes: it must be a multiple of {processes}")
    return batch_size // processes


def processes(devices: int | str, strategy: str) -> int | None:
    """How many processes train (None: Lightning's ``auto`` devices, known once it starts)."""
    devices, nodes, _ = process_layout(devices, strategy)
    return devices * nodes if isinstance(devices, int) else None


def check_layout(devices: int | str, strategy: str, batch_size: int) -> None:
    """Refuse a layout before anything is written or removed.

    That is a ``train.devices`` that srun's tasks contradict, or a ``train.batch_size`` the
    processes cannot share.
    """
    n = processes(devices, strategy)
    if n is not None:
        per_process_batch(batch_size, n)


def steps_per_epoch(patches: int, batch_size: int) -> int:
    """Optimiser steps in an epoch of ``patches`` (a last partial batch is dropped unless alone)."""
    return max(1, patches // batch_size)


def check_warmup(warmup_epochs: int, max_steps: int | None, patches: int, batch_size: int) -> None:
    """Refuse a warm-up that a step budget ends first (the rate would never reach its value)."""
    if not warmup_epochs or max_steps is None:
        return
    steps = warmup_epochs * steps_per_epoch(patches, batch_size)
    if steps >= max_steps:
        raise ValueError(
            f"train.warmup_epochs {warmup_epochs} is {steps} steps ({patches} training patches, "
            f"train.batch_size {batch_size}), not fewer than train.max_steps {max_steps}: the "
            f"learning rate would never reach train.learning_rate; lower warmup_epochs or "
            f"raise max_steps")
