"""Which process this is, and its rows of each batch (shared.training.distributed)."""

import pytest

from shared.training import distributed
from shared.training.distributed import World, from_environment, from_tf_config
from shared.util.errors import UsageError


@pytest.mark.parametrize("count, size", [(32, 2), (33, 2), (30, 4), (3, 4), (1, 2)])
def test_the_shares_cover_each_batch_once_in_order(count, size):
    shares = [World(rank, size).share(count) for rank in range(size)]
    rows = [row for share in shares for row in range(count)[share]]
    assert rows == list(range(count)), "every row once, contiguous, in rank order"
    sizes = [len(range(count)[share]) for share in shares]
    assert max(sizes) - min(sizes) <= 1


def test_a_batch_of_33_splits_16_and_17():
    assert [World(rank, 2).share(33) for rank in range(2)] == [slice(0, 16), slice(16, 33)]


def test_torchrun_sets_the_place_and_without_it_there_is_one_process():
    assert from_environment({}) == World(0, 1, 0)
    assert from_environment({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == World(3, 4, 1)
    assert not World(1, 2).is_main and World(0, 2).distributed


@pytest.mark.parametrize("environment", [{"WORLD_SIZE": "2"}, {"WORLD_SIZE": "two", "RANK": "0"},
                                         {"WORLD_SIZE": "2", "RANK": "2"}])
def test_a_broken_environment_is_one_clear_error(environment):
    with pytest.raises(UsageError, match="torchrun"):
        from_environment(environment)


def test_replicas_count_processes_times_their_devices():
    assert World(rank=1, size=2).replicas == 2  # torchrun: one replica per process
    mirrored = World(devices=4)  # tf.distribute: four devices in one process
    assert mirrored.replicas == 4 and not mirrored.distributed and mirrored.is_main
    assert mirrored.share(10) == slice(0, 10), "a process's own replicas split its rows inside the step"


def test_tf_config_places_the_chief_first_and_the_workers_after_it():
    two_workers = '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}'
    assert from_tf_config({"TF_CONFIG": two_workers}) == World(1, 2)
    chief = '{"cluster": {"chief": ["c:0"], "worker": ["a:1", "b:2"]}, "task": {"type": "%s", "index": %d}}'
    assert from_tf_config({"TF_CONFIG": chief % ("chief", 0)}) == World(0, 3)
    assert from_tf_config({"TF_CONFIG": chief % ("worker", 1)}) == World(2, 3)
    assert from_tf_config({}) == World() and from_tf_config({"TF_CONFIG": ""}) == World()


@pytest.mark.parametrize("config", [
    '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}',  # no such worker
    '{"cluster": {"worker": ["a:1"]}, "task": {"type": "evaluator", "index": 0}}',  # not a training task
    '{"cluster": {"worker": ["a:1"]}}',  # no task
])
def test_a_tf_config_without_a_place_in_the_cluster_is_one_clear_error(config):
    with pytest.raises(UsageError, match="TF_CONFIG"):
        from_tf_config({"TF_CONFIG": config})


@pytest.mark.parametrize("count, batch, replicas, refused", [
    (1438, 32, 8, False),  # the digits: full batches of 32, the last of 30
    (1438, 32, 31, True),  # ... the last batch's 30 rows leave a 31st replica none
    (64, 32, 32, False),  # no last batch: every batch is full
    (10, 4, 3, True),  # the last batch holds 2
    (10, 4, 1, False),  # one replica takes any batch
    (3, 32, 4, True),  # fewer images than one batch: the only batch holds 3
])
def test_a_batch_with_fewer_rows_than_replicas_is_refused_before_training(count, batch, replicas, refused):
    if not refused:
        distributed.check_batches_fill_replicas(count, batch, replicas)
        return
    with pytest.raises(UsageError, match=f"--batch-size {batch}: with {count} training images") as error:
        distributed.check_batches_fill_replicas(count, batch, replicas)
    assert f"fewer than the {replicas} replicas" in str(error.value)
