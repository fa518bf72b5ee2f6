"""The pyramid builder: each pyramid block once every block under it is finished."""

import numpy as np
import pytest

from srbio.core.pyramid import level_mean
from srbio.inference.pyramid import PyramidBuilder
from srbio.io.store import PredictionStore


@pytest.fixture
def store(tmp_path, sample):
    image, _ = sample
    data = image[:2, :70, :90]
    s = PredictionStore.create(tmp_path / "p.ome.zarr", shape=data.shape, dtype="uint16",
                               chunks=(1, 16, 16), spacing=(1.0, 0.1, 0.1),
                               translation=(0.0, 0.0, 0.0), fingerprint="x")
    return s, data


def _reference(data, n):
    levels = [data]
    for _ in range(n - 1):
        levels.append(level_mean(levels[-1], np.uint16))
    return levels


def test_blocks_are_built_as_soon_as_their_children_are_finished(store):
    s, data = store
    assert [a.shape for a in s.levels] == [(2, 70, 90), (2, 35, 45), (2, 18, 23), (2, 9, 12)]
    builder = PyramidBuilder(s)
    assert builder.ready == [] and builder.missing == sum(len(s.blocks(k)) for k in (1, 2, 3))
    order = np.random.default_rng(1).permutation(len(s.blocks(0)))
    for n, i in enumerate(order):
        s.write_block(0, int(i), data[s.blocks(0)[i]])
        for parent in builder.done(0, int(i)):
            builder.build_chain(*parent)
        if n == len(order) // 2:  # half way: only blocks whose children are all done exist
            built = s.finished(1)
            for j in range(len(s.blocks(1))):
                kids = _kids(s, j)
                assert (j in built) == (kids <= {int(k) for k in order[:n + 1]})
    assert builder.missing == 0
    for got, want in zip(s.levels, _reference(data, 4), strict=True):
        np.testing.assert_array_equal(got[:], want)


def _kids(s, j):
    from srbio.inference.pyramid import _children

    return set(_children(s, 1, j))


def test_a_new_builder_builds_only_what_is_missing(store):
    s, data = store
    for i, region in enumerate(s.blocks(0)):
        s.write_block(0, i, data[region])
    first = PyramidBuilder(s)
    first.build_chain(*first.ready[0])  # a run killed after one chain
    done = {k: s.finished(k) for k in (1, 2, 3)}
    again = PyramidBuilder(s)
    assert again.missing == first.missing
    assert again.build_all(progress=False) == first.missing
    assert all(done[k] <= s.finished(k) for k in done)
    for got, want in zip(s.levels, _reference(data, 4), strict=True):
        np.testing.assert_array_equal(got[:], want)


def test_build_all_refuses_when_level_0_is_unfinished(store):
    s, data = store
    s.write_block(0, 0, data[s.blocks(0)[0]])
    with pytest.raises(RuntimeError, match="pyramid blocks wait for blocks"):
        PyramidBuilder(s).build_all(progress=False)
