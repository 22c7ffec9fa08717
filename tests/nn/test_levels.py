import torch

from pipeline.nn.levels import LevelEmbedding


def test_each_model_looks_up_its_own_table_per_column():
    levels = LevelEmbedding(n_models=2, levels=[3, 2], dim=4)
    codes = torch.tensor([[[2.0, 1.0]], [[0.0, 1.0]]])  # [K=2, B=1, c=2]
    out = levels(codes)
    table = levels.table.detach()
    torch.testing.assert_close(out[0, 0], torch.cat([table[0, 2], table[0, 3 + 1]]))
    torch.testing.assert_close(out[1, 0], torch.cat([table[1, 0], table[1, 3 + 1]]))


def test_only_the_looked_up_levels_get_gradients_and_codes_out_of_range_clamp():
    levels = LevelEmbedding(n_models=1, levels=[4], dim=2)
    levels(torch.tensor([[[1.0], [1.0], [3.0]]])).sum().backward()
    touched = (levels.table.grad[0] != 0).any(1).tolist()
    assert touched == [False, True, False, True]
    out = levels(torch.tensor([[[9.0], [-1.0]]]))
    torch.testing.assert_close(out[0, 0], levels.table[0, 3].detach())
    torch.testing.assert_close(out[0, 1], levels.table[0, 0].detach())
