"""Checkpoints: a manifest of sizes and sha256 written last, verified on resume; the newest intact checkpoint and
its fallback; nothing half-written left behind when writing fails."""

from __future__ import annotations

import errno
import hashlib
import json

import pytest

from shared.formats import checkpoints, rundir

FILES = {"model.pt": b"m" * 3000, "weights.npz": b"w" * 2000}


def write_files(epoch: int):
    def write(folder):
        for name, data in FILES.items():
            (folder / name).write_bytes(data + bytes([epoch]))
    return write


def commit(model_dir, epoch: int) -> checkpoints.Checkpoint:
    return checkpoints.commit(model_dir, epoch, "torch", [{"epoch": n} for n in range(1, epoch + 1)], 1.0 * epoch,
                              write_files(epoch))


def test_the_manifest_lists_every_file_with_its_size_and_sha256(tmp_path):
    saved = commit(tmp_path, 1)
    listed = json.loads((saved.folder / rundir.MANIFEST).read_text())["files"]
    assert sorted(listed) == sorted([*FILES, rundir.STATE])
    for name, data in FILES.items():
        content = data + bytes([1])
        assert listed[name] == {"bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}


def test_the_newest_checkpoint_and_the_one_before_it_are_kept(tmp_path):
    for epoch in (1, 2, 3):
        saved = commit(tmp_path, epoch)
    assert sorted(path.name for path in (tmp_path / rundir.CHECKPOINTS).iterdir()) == ["epoch-0002", "epoch-0003"]
    assert checkpoints.latest(tmp_path) == saved and saved.epoch == 3 and saved.history[-1] == {"epoch": 3}


DAMAGE = {
    "truncated": lambda folder: (folder / "model.pt").write_bytes((folder / "model.pt").read_bytes()[:100]),
    "same size, other bytes": lambda folder: (folder / "model.pt").write_bytes(b"x" * 3001),
    "deleted": lambda folder: (folder / "weights.npz").unlink(),
    "state deleted": lambda folder: (folder / rundir.STATE).unlink(),
    "state garbage": lambda folder: (folder / rundir.STATE).write_text("{not json"),
    "manifest deleted": lambda folder: (folder / rundir.MANIFEST).unlink(),
    "manifest garbage": lambda folder: (folder / rundir.MANIFEST).write_bytes(b"\x00\x01"),
}
NAMED = {"truncated": "model.pt has 100 bytes", "same size, other bytes": "model.pt does not match its sha256",
         "deleted": "weights.npz is missing", "state deleted": "state.json is missing",
         "state garbage": "state.json has 9 bytes", "manifest deleted": "manifest.json is missing",
         "manifest garbage": "manifest.json is damaged"}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path, damage):
    commit(tmp_path, 1)
    newest = commit(tmp_path, 2)
    DAMAGE[damage](newest.folder)
    start, damaged = checkpoints.intact(tmp_path)
    assert start.epoch == 1 and start.history == [{"epoch": 1}]
    assert [entry.folder for entry in damaged] == [newest.folder]
    assert NAMED[damage] in damaged[0].problem


def test_with_every_checkpoint_damaged_none_is_intact(tmp_path):
    for epoch in (1, 2):
        DAMAGE["truncated"](commit(tmp_path, epoch).folder)
    start, damaged = checkpoints.intact(tmp_path)
    assert start is None and len(damaged) == 2


def test_committing_after_a_fallback_replaces_the_damaged_epoch(tmp_path):
    commit(tmp_path, 1)
    DAMAGE["deleted"](commit(tmp_path, 2).folder)
    assert checkpoints.latest(tmp_path).epoch == 1
    commit(tmp_path, 2)
    assert checkpoints.intact(tmp_path)[1] == [] and checkpoints.latest(tmp_path).epoch == 2


def test_a_failed_write_leaves_no_temporary_folder_and_the_earlier_epochs_intact(tmp_path):
    commit(tmp_path, 1)
    commit(tmp_path, 2)

    def full_disk(folder):
        (folder / "model.pt").write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        checkpoints.commit(tmp_path, 3, "torch", [], 3.0, full_disk)
    assert sorted(path.name for path in (tmp_path / rundir.CHECKPOINTS).iterdir()) == ["epoch-0001", "epoch-0002"]
    assert checkpoints.latest(tmp_path).epoch == 2
