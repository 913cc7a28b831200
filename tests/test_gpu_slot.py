"""GPU slots of a workstation run (rcpb.process.gpu_slot): one free GPU per training."""

import os

import pytest

from rcpb.process import gpu_slot


@pytest.fixture(autouse=True)
def _no_visible_devices(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    yield
    gpu_slot.release_all()


def test_trainings_take_distinct_free_gpus(tmp_path):
    # flock locks belong to an open file, so two claims in one process behave like two jobs
    assert gpu_slot.claim_gpu(n_gpus=2, lock_dir=str(tmp_path)) == 0
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    del os.environ["CUDA_VISIBLE_DEVICES"]
    assert gpu_slot.claim_gpu(n_gpus=2, lock_dir=str(tmp_path)) == 1
    del os.environ["CUDA_VISIBLE_DEVICES"]
    assert gpu_slot.claim_gpu(n_gpus=2, lock_dir=str(tmp_path)) is None   # both taken
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    gpu_slot.release_all()                                              # jobs ended
    assert gpu_slot.claim_gpu(n_gpus=2, lock_dir=str(tmp_path)) == 0


def test_scheduler_assignment_and_single_gpu_are_left_alone(tmp_path, monkeypatch):
    assert gpu_slot.claim_gpu(n_gpus=1, lock_dir=str(tmp_path)) is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert gpu_slot.claim_gpu(n_gpus=4, lock_dir=str(tmp_path)) is None
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    assert list(tmp_path.iterdir()) == []
