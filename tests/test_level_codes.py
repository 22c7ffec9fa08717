import numpy as np
import pandas as pd

from pipeline.level_codes import LevelCodes


def test_levels_seen_often_enough_get_codes_by_frequency_the_rest_zero():
    frame = pd.DataFrame({"tail": ["b", "a", "b", "c", "a", "b", "d", "d"],
                          "dest": ["x"] * 8})
    codes = LevelCodes(min_count=2).fit(frame)
    assert codes.levels_ == [4, 2]  # b, a, d (a and d tie: by their text) and 0; x and 0
    out = codes.transform(pd.DataFrame({"tail": ["b", "a", "d", "c", "new"],
                                        "dest": ["x", "y", "x", "x", "x"]}))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[1, 1], [2, 0], [3, 1], [0, 1], [0, 1]])
    assert list(codes.get_feature_names_out(["tail", "dest"])) == ["tail_code", "dest_code"]


def test_codes_do_not_depend_on_the_order_of_the_rows():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"c": rng.choice([f"L{i}" for i in range(40)], 500)})
    shuffled = frame.sample(frac=1, random_state=1)
    a = LevelCodes(1).fit(frame).transform(frame)
    b = LevelCodes(1).fit(shuffled).transform(frame)
    np.testing.assert_array_equal(a, b)
    assert LevelCodes(1).fit(frame).levels_ == [41]
