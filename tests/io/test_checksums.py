"""Input checksums: known answers for files and folders, and what each method notices."""

import hashlib

import pytest

from srbio.io import checksums
from srbio.io.checksums import checksum, sha256_file, tree_digest


def _folder(root):
    (root / "0" / "c").mkdir(parents=True)
    (root / "zarr.json").write_text('{"zarr_format": 3}')
    (root / "0" / "c" / "0").write_bytes(b"\x00\x01\x02\x03")
    (root / "0" / "c" / "1").write_bytes(b"\x04\x05")
    return root


def test_a_file_is_the_sha256_of_its_bytes(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * (1 << 19))  # 1.5 MiB: read in several blocks
    expected = hashlib.sha256(b"abc" * (1 << 19)).hexdigest()
    assert sha256_file(path) == expected
    assert checksum(path) == {"sha256": expected, "method": "file", "size": 3 << 19}
    (tmp_path / "empty").write_bytes(b"")
    assert sha256_file(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def test_a_folder_is_the_sha256_of_its_sorted_paths_sizes_and_contents(tmp_path):
    root = _folder(tmp_path / "s.zarr")
    h = hashlib.sha256
    meta = h(b'{"zarr_format": 3}').hexdigest()
    text = (f"0/c/0\t4\t{h(bytes([0, 1, 2, 3])).hexdigest()}\n"
            f"0/c/1\t2\t{h(bytes([4, 5])).hexdigest()}\n"
            f"zarr.json\t18\t{meta}\n")
    assert checksum(root) == {"sha256": h(text.encode()).hexdigest(), "method": "tree", "size": 24}
    before = tree_digest(root)
    (root / "0" / "c" / "1").write_bytes(b"\x04\x06")  # one byte, same size
    assert tree_digest(root) != before
    (root / "0" / "c" / "1").write_bytes(b"\x04\x05")
    assert tree_digest(root) == before
    (root / "0" / "c" / "1").rename(root / "0" / "c" / "2")  # same bytes, another name
    assert tree_digest(root) != before


def test_big_folders_hash_their_metadata_and_list_their_chunks(tmp_path, monkeypatch):
    root = _folder(tmp_path / "big.zarr")
    monkeypatch.setattr(checksums, "TREE_LIMIT", 10)  # 24 bytes: "big"
    found = checksum(root)
    assert found["method"] == "tree-metadata" and found["size"] == 24
    assert found["sha256"] == tree_digest(root, contents=False) != tree_digest(root)
    (root / "0" / "c" / "0").write_bytes(b"\x09\x09\x09\x09")  # rewritten in place, same size:
    assert checksum(root)["sha256"] == found["sha256"]  # documented as not noticed
    (root / "0" / "c" / "0").write_bytes(b"\x09" * 5)  # resized: noticed
    assert checksum(root)["sha256"] != found["sha256"]
    (root / "0" / "c" / "0").write_bytes(b"\x09\x09\x09\x09")
    (root / "zarr.json").write_text('{"zarr_format": 2}')  # metadata: noticed
    assert checksum(root)["sha256"] != found["sha256"]
    monkeypatch.setattr(checksums, "TREE_LIMIT", 1 << 30)  # a recorded method is kept
    assert checksum(root, "tree-metadata")["method"] == "tree-metadata"


def test_a_method_must_fit_the_path_and_the_path_must_exist(tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"f: is a file; checksum method 'tree' is not one for "
                                         r"files"):
        checksum(tmp_path / "f", "tree")
    with pytest.raises(ValueError, match=r"is a folder; checksum method 'file' is for files"):
        checksum(tmp_path, "file")
    with pytest.raises(FileNotFoundError, match="absent: not found"):
        checksum(tmp_path / "absent")


def test_big_files_hash_their_size_and_blocks_spread_over_them(tmp_path, monkeypatch):
    path = tmp_path / "big.tif"
    data = bytearray(b"abcd" * (1 << 20))  # 4 MiB
    path.write_bytes(data)
    monkeypatch.setattr(checksums, "TREE_LIMIT", 1 << 20)
    monkeypatch.setattr(checksums, "SAMPLES", 3)  # blocks at 0, 1.5 and 3 MiB
    found = checksum(path)
    blocks = b"".join(bytes(data[o:o + (1 << 20)]) for o in (0, 3 << 19, 3 << 20))
    expected = hashlib.sha256(b"4194304\n" + blocks).hexdigest()
    assert found == {"sha256": expected, "method": "file-sampled", "size": 4 << 20}
    data[(3 << 19) + 5] ^= 1  # inside a sampled block: noticed
    path.write_bytes(data)
    assert checksum(path)["sha256"] != expected
    data[(3 << 19) + 5] ^= 1
    data[(1 << 20) + 5] ^= 1  # between the samples: documented as not noticed
    path.write_bytes(data)
    assert checksum(path)["sha256"] == expected
    assert checksum(path, "file")["sha256"] == hashlib.sha256(data).hexdigest()  # as recorded
