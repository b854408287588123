"""The count-based exploration bonus: counts, the bonus they give, and the two hashes."""

import numpy as np
import pytest
import torch

from sitt_training.exploration import CountBonus
from sitt_training.rows import Rows, unique_rows


@pytest.mark.parametrize("bits", [0, 32])
def test_bonus_is_coef_over_sqrt_of_the_running_count(bits: int) -> None:
    bonus = CountBonus(obs_dim=3, coef=0.5, bits=bits)
    x = torch.tensor([[0, 0, 1], [0, 0, 1], [1, 2, 3], [0, 0, 1]], dtype=torch.float32)
    rows = Rows(*unique_rows(x))  # unique rows plus an index
    assert rows.index is not None
    first, stats = bonus.add_and_score(rows)
    assert torch.allclose(first, 0.5 / torch.sqrt(torch.tensor([3.0, 3.0, 1.0, 3.0])))
    assert stats["explore/states_seen"] == 2.0
    second, _ = bonus.add_and_score(rows)  # counts accumulate over calls
    assert torch.allclose(second, 0.5 / torch.sqrt(torch.tensor([6.0, 6.0, 2.0, 6.0])))
    # A state seen for the first time gets the full bonus, whatever was counted before.
    new = Rows.of(torch.tensor([[5.0, -1.0, 0.0]]), dedupe=False)  # a batch without index
    third, stats = bonus.add_and_score(new)
    assert third.tolist() == [0.5] and stats["explore/states_seen"] == 3.0


def test_exact_counting_separates_every_grid_observation() -> None:
    grid = np.array(np.meshgrid(*[np.arange(-3, 4)] * 4)).reshape(4, -1).T.astype(np.float32)
    keys = CountBonus(obs_dim=4, coef=1.0, bits=0).hash(grid)
    assert len(np.unique(keys)) == len(grid)
    assert np.array_equal(keys, CountBonus(obs_dim=4, coef=1.0, bits=0).hash(grid))


def test_simhash_merges_near_states_but_not_scaled_ones() -> None:
    bonus = CountBonus(obs_dim=4, coef=1.0, bits=32, seed=3)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 4)).astype(np.float32)
    same = bonus.hash(x) == bonus.hash(x + 1e-4)
    assert same.mean() > 0.9
    # The constant input: states that differ only in scale get different keys.
    assert (bonus.hash(x) != bonus.hash(3 * x)).mean() > 0.9


def test_state_dict_round_trip() -> None:
    a = CountBonus(obs_dim=2, coef=1.0)
    rows = Rows.of(torch.tensor([[0.0, 1.0], [2.0, 3.0], [0.0, 1.0]]), dedupe=True)
    a.add_and_score(rows)
    b = CountBonus(obs_dim=2, coef=1.0)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.add_and_score(rows)[0], b.add_and_score(rows)[0])
