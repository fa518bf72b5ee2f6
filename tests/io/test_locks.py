"""Output locks: one writer per output, shares for --part jobs, stale locks taken over."""

import json
import os
import subprocess
import sys
import time

import pytest

from srbio.io import locks
from srbio.io.locks import OutputBusy, acquire, lock_file, release, releasing


def _foreign(path, **fields):
    """A lock file of another process (by default: this host, a process that has ended)."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    holder = {"host": os.uname().nodename, "pid": int(dead.stdout), "stage": "predict",
              "started": "2026-01-01 00:00:00", "command": "srbio predict", "share": None}
    holder.update(fields)
    path.write_text(json.dumps(holder))
    return path


def test_a_claim_is_exclusive_reentrant_and_released(tmp_path):
    out = tmp_path / "o.ome.zarr"
    with releasing():
        file = acquire(out, "predict")
        assert file == lock_file(out) and file.exists()
        assert json.loads(file.read_text())["pid"] == os.getpid()
        assert acquire(out, "predict") == file  # the same process again
    assert not file.exists()


def test_a_live_holder_is_named_and_nothing_is_taken(tmp_path):
    out = tmp_path / "o.ome.zarr"
    holder = _foreign(lock_file(out), pid=os.getppid(), command="srbio predict --part 1/2")
    with pytest.raises(OutputBusy, match=rf"o.ome.zarr: is being written by srbio predict, "
                                         rf"process {os.getppid()} on .* delete .*\.lock"):
        acquire(out, "predict")
    assert holder.exists() and json.loads(holder.read_text())["pid"] == os.getppid()


def test_a_lock_of_a_dead_process_or_without_heartbeat_is_taken_over(tmp_path, caplog,
                                                                    monkeypatch):
    out = tmp_path / "o"
    _foreign(lock_file(out))  # same host, process gone
    with releasing():
        assert json.loads(acquire(out, "train").read_text())["pid"] == os.getpid()
    assert "ended without releasing it" in caplog.text
    stale = _foreign(lock_file(out), host="another-node", pid=1)
    old = time.time() - locks.STALE_AFTER_S - 5
    os.utime(stale, (old, old))
    with releasing():
        assert json.loads(acquire(out, "train").read_text())["host"] != "another-node"
    _foreign(lock_file(out), host="another-node", pid=1)  # fresh: alive as far as we know
    with pytest.raises(OutputBusy, match="another-node"):
        acquire(out, "train")
    # the same SLURM job, requeued onto this node: its earlier run has ended
    _foreign(lock_file(out), host="another-node", pid=1, slurm_job="77", slurm_restart=0)
    with monkeypatch.context() as m:
        m.setenv("SLURM_JOB_ID", "78")
        m.setenv("SLURM_RESTART_COUNT", "1")
        with pytest.raises(OutputBusy):  # another job: not taken
            acquire(out, "train")
        m.setenv("SLURM_JOB_ID", "77")
        with releasing():
            assert json.loads(acquire(out, "train").read_text())["slurm_restart"] == 1


def test_shares_exclude_their_own_share_and_the_whole(tmp_path):
    out = tmp_path / "o.ome.zarr"
    with releasing():
        acquire(out, "predict", share="part-1-of-2")
        acquire(out, "predict", share="part-2-of-2")  # another share: fine
        # the whole, claimed by another (live) process while the shares are held
        other = subprocess.run([sys.executable, "-c", f"from srbio.io.locks import acquire; "
                                f"acquire({str(out)!r}, 'predict')"],
                               capture_output=True, text=True)
        assert other.returncode != 0 and "OutputBusy" in other.stderr
        assert "(part-1-of-2)" in other.stderr or "(part-2-of-2)" in other.stderr
    _foreign(lock_file(out, "part-1-of-2"), pid=os.getppid(), share="part-1-of-2")
    with pytest.raises(OutputBusy, match=r"srbio predict \(part-1-of-2\)"):
        acquire(out, "predict")
    with pytest.raises(OutputBusy):
        acquire(out, "predict", share="part-1-of-2")
    with releasing():
        acquire(out, "predict", share="part-2-of-2")
    assert not lock_file(out).exists()  # a refused whole claim removed its own lock file


def test_a_forked_child_never_releases_its_parents_lock(tmp_path):
    out = tmp_path / "o"
    file = acquire(out, "train")
    pid = os.fork()
    if pid == 0:  # the child: what a data loader worker would do at exit
        release(file)
        os._exit(0)
    os.waitpid(pid, 0)
    assert file.exists()
    release(file)
    assert not file.exists()


def test_taking_away_a_stale_lock_never_removes_one_created_since(tmp_path):
    from srbio.io.locks import Holder, _read, _take_away

    out = tmp_path / "o"
    stale = Holder("host", 1, "predict", "then")
    live = _foreign(lock_file(out), pid=os.getppid())  # created after the stale one was judged
    _take_away(live, stale)
    assert _read(live).pid == os.getppid() and not list(tmp_path.glob("*takeover*"))


def test_a_refused_claim_keeps_the_claim_held_around_it(tmp_path):
    from srbio.io.locks import held
    from srbio.io.outputs import claim

    out = tmp_path / "o"
    out.mkdir()
    (out / "thesis.txt").write_text("years of work")  # not srbio's: claim refuses it
    with releasing():
        file = acquire(out, "predict")
        with releasing(), pytest.raises(ValueError, match="is not an output of srbio"):
            claim(out, "predict")
        assert file in held() and file.exists()
    assert not file.exists()
