import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pipeline.config import Bound, DataConfig, FeaturesConfig
from pipeline.data.errors import DataError
from pipeline.data.schema import Schema, infer_schema
from pipeline.data.validate import coerce
from pipeline.features import (
    ClipToFitRange,
    DomainFeatures,
    RankGauss,
    SkewedLog1p,
    build_preprocessor,
    build_tree_preprocessor,
    check_datetime_parts,
    code_levels,
    excluded_from_fit,
    n_categorical,
    validate_feature_config,
    wide_columns,
)

from .conftest import make_houses, wide_frame

DATA = DataConfig(id_column="Id", target="SalePrice",
                  column_types={"ExterQual": "ordinal", "PoolQC": "ordinal"},
                  ordinal_levels={"ExterQual": ("Po", "Fa", "TA", "Gd", "Ex"),
                                  "PoolQC": ("None", "Fa", "TA", "Gd", "Ex")})
FEATURES = FeaturesConfig(fill_none=("PoolQC",), derived={"Age": {"YrSold": 1, "YearBuilt": -1}},
                          group_impute={"LotFrontage": "Neighborhood"},
                          log1p_skew_threshold=0.75)


@pytest.fixture
def typed():
    raw = make_houses(200, seed=3)
    schema = infer_schema(raw, DATA)
    return coerce(raw, schema, "train.csv"), schema


def fitted_on(frame, schema, cfg=FEATURES):
    return build_preprocessor(schema, cfg).fit(frame)


def test_no_statistic_of_validation_rows_leaks_in(typed):
    frame, schema = typed
    fit_rows, val_rows = frame.iloc[:150], frame.iloc[150:].copy()
    baseline = fitted_on(fit_rows, schema).transform(val_rows)
    # validation rows are not in the fit: wrecking them must not move any fitted statistic
    pre = build_preprocessor(schema, FEATURES).fit(fit_rows)
    wrecked = val_rows.assign(GrLivArea=1e6, Neighborhood="Mars")
    pre.transform(wrecked)
    np.testing.assert_array_equal(pre.transform(val_rows), baseline)
    # and fitting on different rows does change them (the check above can fail)
    other = fitted_on(frame.iloc[50:], schema).transform(val_rows)
    assert not np.allclose(other, baseline)


def test_numeric_columns_standardized_on_fit_rows(typed):
    frame, schema = typed
    pre = fitted_on(frame, schema)
    out = pre.transform(frame)
    names = list(pre.named_steps["columns"].get_feature_names_out())
    numeric = [i for i, n in enumerate(names) if n.startswith("numeric__")]
    np.testing.assert_allclose(out[:, numeric].mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(out[:, numeric].std(axis=0), 1, atol=1e-3)


def test_one_hot_columns_stay_zero_one_and_unknown_categories_are_all_zero(typed):
    frame, schema = typed
    pre = fitted_on(frame, schema)
    names = list(pre.named_steps["columns"].get_feature_names_out())
    hot = [i for i, n in enumerate(names) if n.startswith("categorical__")]
    out = pre.transform(frame)
    assert set(np.unique(out[:, hot])) == {0.0, 1.0}
    unseen = frame.head(3).assign(Neighborhood="Atlantis")
    hood = [i for i, n in enumerate(names) if n.startswith("categorical__Neighborhood_")]
    assert np.all(pre.transform(unseen)[:, hood] == 0)


def test_rare_categories_share_an_infrequent_column(typed):
    frame, schema = typed
    cfg = FeaturesConfig(min_category_count=40)
    pre = fitted_on(frame, schema, cfg)
    names = pre.named_steps["columns"].get_feature_names_out()
    assert "categorical__MSZoning_infrequent_sklearn" in names  # FV is ~10% of 200 rows


def test_domain_features(typed):
    frame, schema = typed
    domain = DomainFeatures(schema, ("PoolQC",), {"Age": {"YrSold": 1, "YearBuilt": -1}},
                            {"LotFrontage": "Neighborhood"}).fit(frame)
    out = domain.transform(frame)
    assert out["PoolQC"].isna().sum() == 0 and set(out["PoolQC"]) <= {0.0, 3.0, 4.0}
    assert out["ExterQual"].dtype == "float64"
    np.testing.assert_array_equal(out["Age"], frame["YrSold"] - frame["YearBuilt"])
    missing = frame["LotFrontage"].isna()
    medians = frame.groupby("Neighborhood")["LotFrontage"].median()
    np.testing.assert_allclose(out.loc[missing, "LotFrontage"],
                               frame.loc[missing, "Neighborhood"].map(medians))


def test_group_impute_falls_back_to_overall_median_for_unseen_groups(typed):
    frame, schema = typed
    domain = DomainFeatures(schema, group_impute={"LotFrontage": "Neighborhood"}).fit(frame)
    row = frame.head(1).assign(LotFrontage=np.nan, Neighborhood="Atlantis")
    assert domain.transform(row)["LotFrontage"].iloc[0] == frame["LotFrontage"].median()


def test_skewed_log1p_only_touches_skewed_non_negative_columns():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.lognormal(0, 1.5, 500), rng.normal(0, 1, 500),
                         -rng.lognormal(0, 1.5, 500)])
    step = SkewedLog1p(0.75).fit(x)
    assert step.columns_.tolist() == [True, False, False]
    np.testing.assert_allclose(step.transform(x)[:, 0], np.log1p(x[:, 0]))
    assert SkewedLog1p(None).fit(x).columns_.sum() == 0


def test_excluded_from_fit():
    frame = pd.DataFrame({"Area": [100, 5000, 5000], "Price": [1e5, 1e5, 9e5]})
    rules = ({"Area": Bound(greater_than=4000), "Price": Bound(less_than=3e5)},)
    assert excluded_from_fit(frame, rules).tolist() == [False, True, False]
    assert excluded_from_fit(frame, ()).tolist() == [False, False, False]


def test_feature_config_naming_a_missing_column_is_rejected(typed):
    _, schema = typed
    with pytest.raises(ValueError, match="features.fill_none: column 'Garage'"):
        validate_feature_config(schema, FeaturesConfig(fill_none=("Garage",)))
    with pytest.raises(ValueError, match="features.derived.X: column 'Neighborhood' is"):
        validate_feature_config(schema, FeaturesConfig(derived={"X": {"Neighborhood": 1}}))


KINDS = Schema("Id", "y", {"x1": "numeric", "x2": "numeric", "zone": "categorical",
                          "day": "datetime", "lvl": "ordinal"}, {"lvl": ["a", "b"]})
# no datetime part is a raw column yet: day_month is free
assert "day_month" not in KINDS.columns


@pytest.mark.parametrize(("rules", "message"), [
    # a new name that is taken: a raw column, the id, the target, a datetime part, a new name
    ({"indicators": {"x2": "x1"}}, "features.indicators.x2: 'x2' is a feature column"),
    ({"products": {"x2": ("x1", "x1")}}, "features.products.x2: 'x2' is a feature column"),
    ({"derived": {"x1": {"x2": 1}}}, "features.derived.x1: 'x1' is a feature column"),
    ({"products": {"day": ("x1", "x2")}}, "features.products.day: 'day' is a feature column"),
    ({"derived": {"Id": {"x1": 1}}}, "features.derived.Id: 'Id' is the id column"),
    ({"indicators": {"y": "x1"}}, "features.indicators.y: 'y' is the target"),
    ({"products": {"day_month": ("x1", "x2")}},
     "features.products.day_month: 'day_month' is the month of the datetime column 'day'"),
    ({"indicators": {"day_day_of_week": "x1"}}, "the day of week of the datetime column"),
    ({"derived": {"new": {"x1": 1}}, "indicators": {"new": "x2"}},
     "features.indicators.new: 'new' is also made by features.derived.new"),
    # a rule naming the target, or a column of the wrong kind
    ({"derived": {"A": {"x1": 1, "y": 1}}}, "features.derived.A: column 'y' is the target"),
    ({"fill_none": ("y",)}, "features.fill_none: column 'y' is the target"),
    ({"fill_none": ("day",)}, "features.fill_none: column 'day' is datetime, not numeric, "
                              "ordinal or categorical"),
    ({"group_impute": {"x1": "y"}}, "features.group_impute.x1: column 'y' is the target"),
    ({"group_impute": {"x1": "day"}}, "features.group_impute.x1: column 'day' is datetime"),
    ({"group_impute": {"y": "zone"}}, "features.group_impute: column 'y' is the target"),
    ({"group_impute": {"zone": "x1"}}, "features.group_impute: column 'zone' is categorical, "
                                       "not numeric"),
    ({"group_impute": {"x1": "x1"}}, "features.group_impute.x1: groups 'x1' by itself"),
    ({"fit_exclude": ({"zone": Bound(greater_than=1)},)},
     "features.fit_exclude: column 'zone' is categorical, not numeric"),
    ({"fit_exclude": ({"lvl": Bound(greater_than=1)},)},
     "features.fit_exclude: column 'lvl' is ordinal, not numeric"),
    ({"products": {"p": ("x1", "zone")}}, "features.products.p: column 'zone' is categorical, "
                                          "not numeric"),
    ({"products": {"p": ("x1", "day")}}, "features.products.p: column 'day' is datetime"),
    ({"indicators": {"i": "zone"}}, "features.indicators.i: column 'zone' is categorical"),
    ({"indicators": {"i": "y"}}, "features.indicators.i: column 'y' is the target"),
    ({"derived": {"A": {"day": 1}}}, "features.derived.A: column 'day' is datetime"),
])
def test_feature_rules_naming_a_taken_name_the_target_or_the_wrong_kind_are_rejected(
        rules, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        validate_feature_config(KINDS, FeaturesConfig(**rules))


def test_feature_rules_on_columns_of_the_right_kind_are_accepted():
    validate_feature_config(KINDS, FeaturesConfig(
        fill_none=("x1", "zone", "lvl"), derived={"d": {"x1": 1, "lvl": 2}},
        products={"p": ("x1", "lvl")}, indicators={"i": "lvl"},
        group_impute={"x1": "zone", "x2": "lvl"},
        fit_exclude=({"y": Bound(less_than=5), "x1": Bound(greater_than=0)},)))


def test_a_datetime_part_that_is_a_raw_column_is_a_data_error_naming_both():
    schema = Schema("Id", "y", {"day": "datetime", "day_month": "numeric", "x": "numeric"})
    with pytest.raises(DataError, match=re.escape(
            "train.csv, column 'day_month': the datetime column 'day' becomes features "
            "named day_<part>, and its month 'day_month' would overwrite this column")) as caught:
        check_datetime_parts(schema, "train.csv")
    assert "data.drop_columns" in str(caught.value) and "data.column_types" in str(caught.value)
    # what it protects: the real column would be overwritten by the month of `day`
    frame = pd.DataFrame({"Id": [1, 2], "day": pd.to_datetime(["2016-03-01", "2016-04-02"]),
                          "day_month": [10.0, 20.0], "x": [1.0, 2.0]})
    out = DomainFeatures(schema).fit(frame).transform(frame)
    assert out["day_month"].tolist() != [10.0, 20.0]
    check_datetime_parts(Schema("Id", "y", {"day": "datetime", "x": "numeric"}), "train.csv")


def test_two_datetime_columns_whose_parts_share_a_name_are_a_data_error():
    schema = Schema("Id", "y", {"a": "datetime", "a_day_of": "datetime"})
    with pytest.raises(DataError, match="column 'a_day_of': its year and the day of year of "
                                        "the datetime column 'a' would both be the feature "
                                        "'a_day_of_year'"):
        check_datetime_parts(schema, "train.csv")


def test_clip_to_fit_range_bounds_values_by_the_fitting_rows():
    fit = np.array([[1.0, 10.0], [3.0, 20.0]])
    clip = ClipToFitRange(True).fit(fit)
    np.testing.assert_array_equal(clip.transform(np.array([[0.0, 50.0], [2.0, 15.0]])),
                                  [[1.0, 20.0], [2.0, 15.0]])
    np.testing.assert_array_equal(ClipToFitRange(False).fit(fit).transform([[0.0, 50.0]]),
                                  [[0.0, 50.0]])


def test_clipping_in_the_preprocessor_stops_extrapolation(typed):
    frame, schema = typed
    pre = fitted_on(frame, schema, FeaturesConfig(clip_to_fit_range=True))
    names = list(pre.named_steps["columns"].get_feature_names_out())
    area = names.index("numeric__GrLivArea")
    biggest = frame.loc[[frame["GrLivArea"].idxmax()]]
    huge = biggest.assign(GrLivArea=biggest["GrLivArea"] * 3)
    assert pre.transform(huge)[0, area] == pre.transform(biggest)[0, area]
    unclipped = fitted_on(frame, schema, FeaturesConfig(clip_to_fit_range=False))
    assert unclipped.transform(huge)[0, area] > unclipped.transform(biggest)[0, area]


def test_products_and_indicators(typed):
    frame, schema = typed
    domain = DomainFeatures(schema, products={"QualArea": ("OverallQual", "GrLivArea")},
                            indicators={"HasFrontage": "LotFrontage"}).fit(frame)
    out = domain.transform(frame)
    np.testing.assert_array_equal(out["QualArea"], frame["OverallQual"] * frame["GrLivArea"])
    missing = frame["LotFrontage"].isna()
    assert out.loc[~missing, "HasFrontage"].eq(1.0).all()
    assert out.loc[missing, "HasFrontage"].isna().all()  # unknown stays unknown, then imputed


# --- datetime columns -------------------------------------------------------------------------

def dated_frame() -> tuple[pd.DataFrame, Schema]:
    schema = Schema("id", "y", {"When": "datetime", "Day": "datetime", "x": "numeric"})
    frame = pd.DataFrame({
        "id": [1, 2, 3, 4],
        "When": pd.to_datetime(["2016-03-01 13:30", "2016-12-31 00:00", None,
                                "1970-01-02 06:00"]),
        "Day": pd.to_datetime(["2016-03-01", "2016-03-02", "2017-01-01", None]),
        "x": [1.0, 2.0, 3.0, 4.0],
    })
    return frame, schema


def test_datetime_columns_become_calendar_parts_and_elapsed_days():
    frame, schema = dated_frame()
    out = DomainFeatures(schema).fit(frame).transform(frame)
    assert "When" not in out.columns
    first = out.iloc[0]
    assert (first["When_year"], first["When_month"], first["When_day"]) == (2016, 3, 1)
    assert first["When_day_of_week"] == 1  # a Tuesday (Monday = 0)
    assert first["When_day_of_year"] == 61 and first["When_hour"] == 13
    assert out["When_elapsed_days"].iloc[3] == pytest.approx(1.25)  # 1970-01-02 06:00
    assert out.filter(like="When_").iloc[2].isna().all()  # a missing date: missing parts
    assert (out.dtypes == "float64").all()


def test_datetime_parts_constant_on_the_fit_rows_are_left_out():
    frame, schema = dated_frame()
    domain = DomainFeatures(schema).fit(frame)
    out = domain.transform(frame)
    assert "Day_hour" not in out.columns  # dates without a time of day
    assert "When_hour" in out.columns
    # decided on the fitting rows: a later frame with hours does not add a column
    later = frame.assign(Day=pd.to_datetime(["2018-05-05 17:00"] * 4))
    assert list(domain.transform(later).columns) == list(out.columns)


def test_datetime_columns_through_the_whole_preprocessor():
    frame, schema = dated_frame()
    pre = build_preprocessor(schema, FeaturesConfig()).fit(frame)
    x = pre.transform(frame)
    assert np.isfinite(x).all()  # missing dates are imputed like any missing number
    names = pre.named_steps["columns"].get_feature_names_out()
    assert "numeric__When_elapsed_days" in names and "numeric__Day_month" in names


def test_an_id_column_can_double_as_a_datetime_feature():
    # Bike Sharing: the hour identifies a row and is the strongest predictor
    hours = pd.date_range("2011-01-01", periods=48, freq="h").strftime("%Y-%m-%d %H:%M:%S")
    raw = pd.DataFrame({"datetime": hours, "temp": np.arange(48.0), "count": np.arange(48)})
    cfg = DataConfig(id_column="datetime", target="count", log_target="log1p",
                     column_types={"datetime": "datetime"})
    schema = infer_schema(raw, cfg)
    assert schema.id_type == "text" and schema.columns["datetime"] == "datetime"
    typed = coerce(raw, schema, "train.csv")
    assert typed["datetime"].tolist() == list(hours)  # the id itself stays verbatim
    pre = build_preprocessor(schema, FeaturesConfig()).fit(typed)
    names = list(pre.named_steps["columns"].get_feature_names_out())
    assert "numeric__datetime_hour" in names and "numeric__temp" in names
    hour = pre.named_steps["domain"].transform(typed)["datetime_hour"]
    np.testing.assert_array_equal(hour, np.arange(48) % 24)


def test_quantile_scaling_maps_numbers_to_a_bounded_normal_shape(typed):
    frame, schema = typed
    pre = fitted_on(frame, schema, FeaturesConfig(numeric_scaling="quantile"))
    names = list(pre.named_steps["columns"].get_feature_names_out())
    area = names.index("numeric__GrLivArea")
    out = pre.transform(frame)[:, area]
    assert abs(np.median(out)) < 0.1 and 0.8 < out.std() < 1.2
    huge = frame.head(1).assign(GrLivArea=1e9)
    assert pre.transform(huge)[0, area] <= out.max() + 1e-9


def test_robust_scaling_centres_on_the_median_and_bends_the_tails(typed):
    frame, schema = typed
    pre = fitted_on(frame, schema, FeaturesConfig(numeric_scaling="robust"))
    names = list(pre.named_steps["columns"].get_feature_names_out())
    area = names.index("numeric__GrLivArea")
    out = pre.transform(frame)[:, area]
    assert abs(np.median(out)) < 1e-9 and np.abs(out).max() < 3  # smooth clip at 3
    q25, q75 = np.percentile(frame["GrLivArea"], [25, 75])
    inner = (frame["GrLivArea"] > q25) & (frame["GrLivArea"] < q75)
    assert np.abs(out[inner.to_numpy()]).max() < 0.55  # the bulk nearly unbent
    huge = frame.head(1).assign(GrLivArea=1e9)
    assert 2.99 < pre.transform(huge)[0, area] <= 3


def test_rank_gauss_on_fewer_rows_than_quantiles_uses_one_per_row_without_a_warning():
    import warnings

    from sklearn.preprocessing import QuantileTransformer

    x = np.random.default_rng(0).lognormal(size=(120, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # sklearn's n_quantiles warning would raise here
        ours = RankGauss(n_quantiles=1000, output_distribution="normal", subsample=None).fit(x)
    assert ours.n_quantiles_ == 120
    same = QuantileTransformer(n_quantiles=120, output_distribution="normal",
                               subsample=None).fit(x)
    np.testing.assert_array_equal(ours.transform(x), same.transform(x))


@pytest.mark.parametrize("scaling", ["standard", "quantile", "robust"])
def test_all_missing_and_constant_columns_give_finite_features_without_warnings(scaling):
    import warnings

    raw = make_houses(120, seed=4).assign(Empty=np.nan, Const=5.0, Same="x")
    schema = infer_schema(raw, DATA)
    frame = coerce(raw, schema, "train.csv")
    new = coerce(make_houses(30, seed=5).assign(Empty=2.0, Const=9.0, Same="y"), schema,
                 "test.csv")  # values never seen in training
    cfg = FeaturesConfig(**{**FEATURES.__dict__, "numeric_scaling": scaling})
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # none from a constant column
        prep = fitted_on(frame, schema, cfg)
        x_fit, x_new = prep.transform(frame), prep.transform(new)
    assert np.isfinite(x_fit).all() and np.isfinite(x_new).all()
    names = list(prep.named_steps["columns"].get_feature_names_out())
    for column in ("Empty", "Const"):  # a constant the model can ignore, never NaN
        i = next(k for k, n in enumerate(names) if n.endswith(f"__{column}"))
        assert np.ptp(x_fit[:, i]) == 0


def test_a_wide_category_read_one_hot_gets_bounded_one_hot_and_per_fold_encodings():
    frame, schema = wide_frame()
    cfg = FeaturesConfig(max_onehot_levels=16, wide_categories="onehot")
    pre = build_preprocessor(schema, cfg, seed=0)
    fitted = pre.fit_transform(frame, frame["y"].to_numpy())
    names = list(pre.named_steps["columns"].get_feature_names_out())
    tail = [n for n in names if n.startswith("categorical__tail_")]
    assert len(tail) == 17  # the 16 most frequent levels and one for the rest
    assert [n for n in names if n.startswith("wide__")] == [
        "wide__frequency__tail_frequency", "wide__target__tail"]
    assert sum(n.startswith("categorical__origin_") for n in names) == 3  # few levels: all
    assert fitted.shape[1] == len(names) == 1 + 17 + 3 + 2
    # the target encoding carries the level's effect (it would be noise if it leaked nothing)
    encoded = fitted[:, names.index("wide__target__tail")]
    assert np.corrcoef(encoded, frame["y"])[0, 1] > 0.5


def test_with_level_vectors_a_wide_category_is_a_leading_code_column_not_one_hot():
    frame, schema = wide_frame()
    cfg = FeaturesConfig(max_onehot_levels=16, wide_categories="embedding",
                         min_embedded_count=2)
    assert wide_columns(frame, schema, cfg) == ("tail",)
    pre = build_preprocessor(schema, cfg, seed=0, wide=("tail",))
    fitted = pre.fit_transform(frame.iloc[:2000], frame["y"].to_numpy()[:2000])
    names = list(pre.named_steps["columns"].get_feature_names_out())
    assert names[0] == "codes__tail_code"
    assert not [n for n in names if n.startswith("categorical__tail")]
    assert sum(n.startswith("categorical__origin_") for n in names) == 3
    assert [n for n in names if n.startswith("wide__")] == [
        "wide__frequency__tail_frequency", "wide__target__tail"]
    seen = frame["tail"].iloc[:2000].value_counts()
    assert code_levels(pre) == [int((seen >= 2).sum()) + 1]
    # the most frequent level is code 1; a level the fit never saw is code 0
    top = seen.index[0]
    assert set(fitted[(frame["tail"].iloc[:2000] == top).to_numpy(), 0]) == {1.0}
    unseen = pre.transform(frame.iloc[:1].assign(tail="never seen"))
    assert unseen[0, 0] == 0.0
    # without wide columns, or with one-hot: no code columns
    assert code_levels(build_preprocessor(schema, FeaturesConfig(
        max_onehot_levels=16, wide_categories="onehot")).fit(frame, frame["y"].to_numpy())) == []
    narrow = FeaturesConfig(max_onehot_levels=1000, wide_categories="embedding")
    assert code_levels(build_preprocessor(schema, narrow).fit(frame)) == []


def test_fitting_rows_get_cross_fitted_target_encodings_never_their_own_target():
    frame, schema = wide_frame(levels=1500)  # two rows a level: own targets would show
    pre = build_preprocessor(schema, FeaturesConfig(max_onehot_levels=8), seed=0)
    y = frame["y"].to_numpy()
    fitted = pre.fit_transform(frame, y)
    applied = pre.transform(frame)
    names = list(pre.named_steps["columns"].get_feature_names_out())
    column = names.index("wide__target__tail")
    # applied to the rows it was fitted on, the encoding includes each row's own target and
    # tracks it closely; the cross-fitted one, which training uses, cannot
    own = np.corrcoef(applied[:, column], y)[0, 1]
    crossed = np.corrcoef(fitted[:, column], y)[0, 1]
    assert own > crossed + 0.2, (own, crossed)


def test_no_wide_encodings_when_turned_off_or_no_column_is_wide(typed):
    frame, schema = typed
    pre = build_preprocessor(schema, FEATURES).fit(frame)
    names = pre.named_steps["columns"].get_feature_names_out()
    assert not [n for n in names if n.startswith("wide__")]
    wide, wide_schema = wide_frame()
    off = build_preprocessor(wide_schema, FeaturesConfig(max_onehot_levels=4,
                                                         wide_encodings=()))
    off.fit(wide)
    assert not [n for n in off.named_steps["columns"].get_feature_names_out()
                if n.startswith("wide__")]


def test_the_tree_view_puts_category_codes_first_and_numbers_as_they_are(typed):
    frame, schema = typed
    frame = frame.copy()
    frame.loc[frame.index[:5], "GrLivArea"] = np.nan
    pre = build_tree_preprocessor(schema, FEATURES).fit(frame)
    names = list(pre.named_steps["columns"].get_feature_names_out())
    out = pre.transform(frame)
    codes = n_categorical(pre)
    domain = pre.named_steps["domain"].transform(frame)
    text = list(domain.select_dtypes(exclude="number").columns)
    assert codes == len(text) > 0 and out.shape[1] == domain.shape[1]  # one column each
    assert [n.removeprefix("categorical__") for n in names[:codes]] == text
    hood = text.index("Neighborhood")
    levels = frame["Neighborhood"].nunique()
    assert set(np.unique(out[:, hood])) == set(range(levels))  # integer codes
    area = names.index("numeric__GrLivArea")
    assert np.isnan(out[:5, area]).all()  # missing stays missing: trees split on it
    np.testing.assert_array_equal(out[5:, area], frame["GrLivArea"].to_numpy()[5:])  # unscaled
    unseen = pre.transform(frame.head(3).assign(Neighborhood="Atlantis"))
    assert (unseen[:, hood] == -1).all()  # LightGBM reads a negative code as missing


def test_the_tree_view_encodes_a_wide_category_instead_of_coding_it(typed):
    """A category of more levels than max_onehot_levels gets the MLP's frequency and
    cross-fitted target encodings, not a code: thousands of levels split as sets let the
    trees fit noise (flights' tail numbers)."""
    frame, schema = typed
    cfg = FEATURES.model_copy(update={"max_onehot_levels": 3})
    pre = build_tree_preprocessor(schema, cfg)
    pre.fit_transform(frame, np.log(frame["SalePrice"].to_numpy()))
    names = list(pre.named_steps["columns"].get_feature_names_out())
    assert frame["Neighborhood"].nunique() > 3 >= frame["MSZoning"].nunique()
    assert n_categorical(pre) == 1 and names[:3] == [
        "categorical__MSZoning", "wide__frequency__Neighborhood_frequency",
        "wide__target__Neighborhood"]


def test_calendar_levels_become_categories_and_wide_ones_their_encodings():
    frame, schema = dated_frame()
    schema = replace(schema, calendar_levels={"When": ["date", "stamp"], "Day": ["date"]})
    out = DomainFeatures(schema).fit(frame).transform(frame)
    assert out["When_date"].tolist()[:2] == ["2016-03-01", "2016-12-31"]
    assert out["When_stamp"].iloc[0] == "2016-03-01 13:30:00"
    assert out["When_date"].isna().iloc[2] and out["Day_date"].iloc[0] == "2016-03-01"
    assert "When_elapsed_days" in out.columns  # the numbers stay beside them
    frame = pd.concat([frame] * 10, ignore_index=True)  # rows for the target encoding's folds
    pre = build_preprocessor(schema, FeaturesConfig(max_onehot_levels=2)).fit(
        frame, np.arange(len(frame), dtype=float))
    names = list(pre.named_steps["columns"].get_feature_names_out())
    # more levels than max_onehot_levels: level codes, and the encodings
    assert {"wide__frequency__When_stamp_frequency", "wide__target__When_date",
            "wide__target__Day_date", "codes__When_stamp_code"} <= set(names)


def test_a_calendar_level_named_like_a_raw_column_is_a_data_error():
    schema = Schema("Id", "y", {"day": "datetime", "day_date": "numeric"},
                    calendar_levels={"day": ["date"]})
    with pytest.raises(DataError, match="its date 'day_date' would overwrite this column"):
        check_datetime_parts(schema, "train.csv")
