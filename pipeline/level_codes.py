"""Level codes: a wide categorical column as one column of integer codes, for the MLP's
learned level vectors (`pipeline.nn.levels`).

Fitted per fold on its fitting rows: each level seen at least `min_count` times gets a code
1..L, most frequent first (ties by the level's text, so the codes do not depend on row order);
0 is every other level (rarer, or unseen when fitted). The codes are floats in the input
matrix, exact up to 2**24 levels.

>>> codes = LevelCodes(min_count=2).fit(pd.DataFrame({"c": ["a", "b", "a", "c", "b", "a"]}))
>>> codes.transform(pd.DataFrame({"c": ["a", "b", "c", "z"]})).ravel().tolist(), codes.levels_
([1.0, 2.0, 0.0, 0.0], [3])
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted


class LevelCodes(TransformerMixin, BaseEstimator):
    """Each column's levels seen `min_count` times as codes 1..L; `levels_[j]` = L + 1."""

    def __init__(self, min_count: int = 2) -> None:
        self.min_count = min_count

    def fit(self, x: pd.DataFrame | np.ndarray, y: object = None) -> LevelCodes:
        frame = pd.DataFrame(x)
        self.codes_ = []
        for column in frame.columns:
            counts = frame[column].astype(str).value_counts()
            kept = counts[counts >= self.min_count]
            order = sorted(kept.items(), key=lambda item: (-item[1], item[0]))
            self.codes_.append({level: code for code, (level, _) in enumerate(order, 1)})
        self.levels_ = [len(codes) + 1 for codes in self.codes_]
        self.n_features_in_ = frame.shape[1]
        return self

    def transform(self, x: pd.DataFrame | np.ndarray) -> np.ndarray:
        check_is_fitted(self, "codes_")
        return mapped(pd.DataFrame(x).astype(str), self.codes_, 0).astype(np.float32)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return suffixed(input_features, self.n_features_in_, "code")


def mapped(frame: pd.DataFrame, maps: list[dict], unseen: float) -> np.ndarray:
    """Each column's values through its own map, `unseen` where the map has none: float64."""
    out = np.empty(frame.shape, dtype=np.float64)
    for j, (column, levels) in enumerate(zip(frame.columns, maps, strict=True)):
        out[:, j] = frame[column].map(levels).fillna(unseen).to_numpy(dtype=np.float64)
    return out


def suffixed(input_features: object, n_features: int, suffix: str) -> np.ndarray:
    """An encoder's output names: each input's name (or x0, x1, ...) and the suffix."""
    names = input_features if input_features is not None else \
        [f"x{i}" for i in range(n_features)]
    return np.asarray([f"{n}_{suffix}" for n in names], dtype=object)
