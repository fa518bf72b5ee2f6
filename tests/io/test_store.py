"""The prediction store's completion logs: an untouched block is trusted without reading it,
a block changed since it was logged is checked against its checksum."""

import numpy as np

from srbio.io import store as store_module
from srbio.io.store import PredictionStore


def test_finished_blocks_are_trusted_by_their_file_and_checked_when_it_changed(
        tmp_path, sample, monkeypatch):
    image, _ = sample
    data = image[3, :64, :64]
    s = PredictionStore.create(tmp_path / "p.ome.zarr", shape=data.shape, dtype="uint16",
                               chunks=(32, 32), spacing=(0.1, 0.1), translation=(0.0, 0.0),
                               fingerprint="x")
    for i, region in enumerate(s.blocks(0)):
        s.write_block(0, i, data[region], counts=(1, 2, 3))
    assert s.counts(0) == [4, 8, 12]

    def unread(block):
        raise AssertionError("an untouched block was read back")

    with monkeypatch.context() as m:
        m.setattr(store_module, "checksum", unread)
        assert PredictionStore(s.path).finished(0) == {0, 1, 2, 3}
    # same pixels rewritten (another mtime): read back and accepted by its checksum
    s.levels[0][s.blocks(0)[1]] = data[s.blocks(0)[1]]
    # other pixels: read back, refused by its checksum, so the block is redone
    s.levels[0][s.blocks(0)[2]] = np.flipud(data[s.blocks(0)[2]])
    assert PredictionStore(s.path).finished(0) == {0, 1, 3}
