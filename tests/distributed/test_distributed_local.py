"""gradflow.distributed in one process (no mpirun): sharding, a world of one, and error messages."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.distributed as dist
from gradflow.distributed import runtime


@pytest.mark.parametrize("n, world", [(10, 2), (11, 3), (2, 4), (0, 2)])
def test_shards_are_disjoint_cover_the_data_and_follow_the_seed(n, world):
    shards = [dist.shard_indices(n, r, world, seed=5) for r in range(world)]
    assert sorted(np.concatenate(shards).tolist()) == list(range(n))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    again = [dist.shard_indices(n, r, world, seed=5) for r in range(world)]
    assert all(np.array_equal(a, b) for a, b in zip(shards, again))
    if n > 2:
        assert not np.array_equal(shards[0], dist.shard_indices(n, 0, world, seed=5, epoch=1))


def test_shard_batches_split_each_global_batch_and_weight_uneven_pieces():
    world, n, batch = 3, 23, 8
    per_rank = [dist.shard_batches(n, batch, r, world, seed=1) for r in range(world)]
    assert {len(b) for b in per_rank} == {3}  # every rank takes the same number of steps
    single = dist.shard_batches(n, batch, 0, 1, seed=1)
    for step, (whole, _) in enumerate(single):
        pieces = [per_rank[r][step] for r in range(world)]
        assert np.array_equal(np.concatenate([p for p, _ in pieces]), whole)
        # weight_r * mean(piece_r) averaged over ranks is mean(whole): each sample counts 1 / len(whole)
        assert all(w * len(whole) == pytest.approx(len(p) * world) for p, w in pieces)
        assert sum(w for _, w in pieces) == pytest.approx(world)
    assert len(dist.shard_batches(n, batch, 0, world, drop_last=True)) == 2
    with pytest.raises(ValueError, match="rank 3 is not in a world of 3"):
        dist.shard_batches(n, batch, 3, world)


def test_uninitialised_use_says_to_call_init(monkeypatch):
    monkeypatch.setitem(runtime._state, "mpi", None)
    with pytest.raises(dist.DistributedError, match="call gradflow.distributed.init"):
        dist.all_reduce(gf.tensor([1.0]))
    assert dist.is_main_process()


def test_world_of_one_collectives_are_identities_and_training_wraps():
    pytest.importorskip("mpi4py", reason="needs the distributed extra: pip install 'gradflow[distributed]'")
    assert dist.init(abort_on_error=False) == (0, 1)
    t = gf.tensor([[1.0, 2.0], [3.0, 4.0]], dtype="float64")
    np.testing.assert_array_equal(dist.all_reduce(t, op="mean").numpy(), [[1, 2], [3, 4]])
    np.testing.assert_array_equal(dist.broadcast(t.transpose()).numpy(), [[1, 3], [2, 4]])
    with pytest.raises(dist.DistributedError, match="needs a floating dtype"):
        dist.all_reduce(gf.tensor([1, 2]), op="mean")
    with pytest.raises(ValueError, match="all_reduce op must be one of"):
        dist.all_reduce(t, op="prod")
    with pytest.raises(dist.DistributedError, match="broadcast root 1 is not a rank"):
        dist.broadcast(t, root=1)

    w = gf.tensor([1.0, -1.0], dtype="float64", requires_grad=True)
    unused = gf.tensor([0.5], dtype="float64", requires_grad=True)
    model = type("M", (), {"parameters": lambda self: iter([w, unused]), "__call__": lambda self, x: (w * x).sum()})()
    stepped = []
    optimizer = type("O", (), {"params": [w, unused], "step": lambda self: stepped.append(1)})()
    model, optimizer = dist.wrap_training(model, optimizer)
    model(gf.tensor([2.0, 3.0], dtype="float64")).backward()
    optimizer.step()
    assert stepped == [1]
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 3.0])
    np.testing.assert_array_equal(unused.grad.numpy(), [0.0])  # unused parameters reduce as zeros
    assert optimizer.bytes_reduced == 3 * 8


def test_activation_memory_per_rank_plans_a_split_in_one_process():
    rng = np.random.default_rng(0)
    w = gf.tensor(rng.standard_normal((8, 6)), requires_grad=True)
    model = lambda x: gf.tanh(x @ w.transpose())  # noqa: E731
    loss_fn = lambda out, y: ((out - y) ** 2).mean()  # noqa: E731
    x, y = rng.standard_normal((10, 6)), rng.standard_normal((10, 8))
    whole = dist.activation_memory_per_rank(model, loss_fn, x, y, world=1)[0]
    split = dist.activation_memory_per_rank(model, loss_fn, x, y, world=2)
    assert [s["batch"] for s in split] == [5, 5] and whole["batch"] == 10
    assert whole["activation_bytes"] > 0
    for share in split:  # activations scale with the batch; saved inputs also hold scalar constants
        assert share["activation_bytes"] * 2 == whole["activation_bytes"]
        assert whole["saved_input_bytes"] / 2 < share["saved_input_bytes"] < whole["saved_input_bytes"]


def test_sharded_batches_hand_each_rank_its_piece_and_weight():
    from gradflow.distributed.cli import ShardedBatches

    optimizer = type("O", (), {"scale": None})()
    global_batches = [(gf.tensor(np.arange(4.0)),), (gf.tensor(np.arange(3.0)),), (gf.tensor([9.0]),)]
    seen = []
    for (piece,) in ShardedBatches(global_batches, 1, 2, optimizer):
        seen.append((piece.numpy().tolist(), optimizer.scale))
    # the last global batch has fewer samples than ranks: skipped on every rank
    assert seen == [([2.0, 3.0], 1.0), ([2.0], pytest.approx(2 / 3))]


def test_a_global_batch_smaller_than_the_world_is_refused_by_name():
    """Issue 16 item 11: --batch-size 1 on 2 ranks used to end in ZeroDivisionError and MPI_Abort."""
    from gradflow.distributed.cli import check_batch_size

    with pytest.raises(dist.DistributedError, match=r"--batch-size 1 is the global batch, split over the 2 ranks; "
                                                    r"it must be at least the number of ranks \(2\)"):
        check_batch_size(1, 2)
    check_batch_size(2, 2)  # one sample per rank is enough
