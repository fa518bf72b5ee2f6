"""How many processes train, and each one's share of a step's batch (DDP under srun)."""

import pytest

from srbio.train.layout import (
    check_layout,
    check_warmup,
    per_process_batch,
    process_layout,
    steps_per_epoch,
)

SRUN = {"SLURM_STEP_ID": "0", "SLURM_NTASKS": "4", "SLURM_NTASKS_PER_NODE": "2",
        "SLURM_NNODES": "2"}


@pytest.fixture
def env(monkeypatch):
    for name in SRUN:
        monkeypatch.delenv(name, raising=False)

    def set_env(**values):
        for name, value in values.items():
            monkeypatch.setenv(name, value)
    return set_env


def test_one_process_keeps_the_configured_devices(env):
    assert process_layout(1, "auto") == (1, 1, "auto")
    env(SLURM_STEP_ID="0", SLURM_NTASKS="1", SLURM_NTASKS_PER_NODE="1", SLURM_NNODES="1")
    assert process_layout("auto", "auto") == ("auto", 1, "auto")  # `srun -n1`: one process


def test_srun_tasks_give_devices_per_node_nodes_and_ddp(env):
    env(**SRUN)
    assert process_layout(1, "auto") == (2, 2, "ddp")
    assert process_layout(2, "ddp_spawn") == (2, 2, "ddp_spawn")
    with pytest.raises(ValueError, match=r"train.devices is 4, but srun started 2 tasks per node"):
        process_layout(4, "auto")


def test_a_steps_batch_is_shared_by_the_processes():
    assert per_process_batch(16, 1) == 16 and per_process_batch(16, 4) == 4
    with pytest.raises(ValueError, match="train.batch_size 10 .* multiple of 4"):
        per_process_batch(10, 4)


def test_a_bad_layout_is_refused_before_training_touches_anything(env):
    check_layout(1, "auto", 10)  # one process: any batch
    env(**SRUN)
    with pytest.raises(ValueError, match="train.batch_size 10 .* shared by 4 processes"):
        check_layout(1, "auto", 10)
    env(SLURM_NTASKS_PER_NODE="2(x2)")
    with pytest.raises(ValueError, match=r"SLURM variable SLURM_NTASKS_PER_NODE is '2\(x2\)', expected"):
        check_layout(1, "auto", 16)


def test_a_warm_up_must_end_within_the_step_budget():
    assert steps_per_epoch(16000, 16) == 1000 and steps_per_epoch(40, 16) == 2
    assert steps_per_epoch(10, 16) == 1  # one partial batch is kept
    check_warmup(0, 10, 16000, 16)  # no warm-up
    check_warmup(5, None, 16000, 16)  # no step budget
    check_warmup(1, 1001, 16000, 16)
    with pytest.raises(ValueError, match=r"train.warmup_epochs 5 is 5000 steps \(16000 training "
                                         r"patches, train.batch_size 16\), not fewer than "
                                         r"train.max_steps 550"):
        check_warmup(5, 550, 16000, 16)
    with pytest.raises(ValueError, match="warmup_epochs 1 is 1000 steps"):
        check_warmup(1, 1000, 16000, 16)
