"""The patch store: one patch per chunk in shards, read lazily, pickled as a path."""

import pickle

import numpy as np
import pytest
import zarr

from srbio.io.patches import PARTS, open_patches, read_patches, write_patches


def _arrays(n=300):
    rng = np.random.default_rng(0)
    return {k: rng.integers(0, 4000, (n if k.startswith("train") else 7,
                                      *((8, 8) if k.endswith("lr") else (16, 16))),
                            dtype=np.uint16) for k in PARTS}


def test_patches_are_read_one_at_a_time_from_shard_files(tmp_path):
    arrays = _arrays()
    write_patches(tmp_path / "p.zarr", arrays)
    arr = zarr.open_array(str(tmp_path / "p.zarr"), path="train/hr", mode="r")
    assert arr.chunks == (1, 16, 16) and arr.shards == (256, 16, 16)
    lazy = open_patches(tmp_path / "p.zarr")
    assert len(lazy["train/lr"]) == 300 and lazy["val/hr"].shape == (7, 16, 16)
    blob = pickle.dumps(lazy["train/hr"])  # what a loader worker receives: a path, no data
    assert len(blob) < 1000
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again[299], arrays["train/hr"][299])
    np.testing.assert_array_equal(lazy["train/lr"][5], arrays["train/lr"][5])
    whole = read_patches(tmp_path / "p.zarr")
    assert all(np.array_equal(whole[k], arrays[k]) for k in PARTS)


def test_stores_of_the_old_chunking_still_read(tmp_path):
    arrays = _arrays(20)
    group = zarr.open_group(str(tmp_path / "old.zarr"), mode="w", zarr_format=3)
    for name, arr in arrays.items():  # srbio <= 0.2: 256 patches per chunk, no shards
        group.create_array(name, data=arr, chunks=(min(256, len(arr)), *arr.shape[1:]))
    np.testing.assert_array_equal(open_patches(tmp_path / "old.zarr")["train/hr"][19],
                                  arrays["train/hr"][19])


def test_foreign_stores_are_named(tmp_path):
    with pytest.raises(ValueError, match="nowhere.zarr: not a patch store"):
        open_patches(tmp_path / "nowhere.zarr")
    group = zarr.open_group(str(tmp_path / "f.zarr"), mode="w", zarr_format=3)
    group.create_array("train/lr", data=np.zeros((2, 4, 4), np.uint16))
    with pytest.raises(ValueError, match="f.zarr: patch store lacks train/hr"):
        open_patches(tmp_path / "f.zarr")
    for k in PARTS[1:]:
        group.create_array(k, data=np.zeros((2, 4, 4), np.uint16))
    group.create_array("train/lr", data=np.zeros((2, 4, 4), np.float32), overwrite=True)
    with pytest.raises(ValueError, match=r"train/lr must be \(N, h, w\) or \(N, d, h, w\) uint16 "
                                         "patches, got float32"):
        open_patches(tmp_path / "f.zarr")


def test_small_stores_are_kept_a_shard_at_a_time_large_ones_never(tmp_path, monkeypatch):
    import srbio.io.patches as patches

    arrays = _arrays(300)
    write_patches(tmp_path / "p.zarr", arrays)
    small = open_patches(tmp_path / "p.zarr")["train/hr"]
    assert small.cached and small.shard == 256
    for i in (0, 299, 5):
        np.testing.assert_array_equal(small[i], arrays["train/hr"][i])
    assert sorted(small._blocks) == [0, 1]  # two shard reads for three patches
    assert pickle.loads(pickle.dumps(small))._blocks == {}  # workers start empty
    monkeypatch.setattr(patches, "CACHE_BYTES", 1000)  # as if the store were huge
    large = open_patches(tmp_path / "p.zarr")["train/hr"]
    np.testing.assert_array_equal(large[299], arrays["train/hr"][299])
    assert not large.cached and large._blocks == {}
