"""The declared, frozen configuration: params.yaml read once (YAML 1.2) into pydantic models.

Every section of params.yaml is one model with `extra="forbid"` and a constraint on every
field, so a typo or an out-of-range value is an error naming its key when the file is read,
never a traceback later. Values that depend on the data (folds against rows) are checked
when the data is loaded.
"""

from pipeline.config.data import Bound, DataConfig, FeaturesConfig
from pipeline.config.errors import ConfigError
from pipeline.config.model import (
    BaseConfig,
    CVConfig,
    EnsembleConfig,
    ModelConfig,
    ReferenceConfig,
)
from pipeline.config.params import (
    Config,
    TrackingConfig,
    config_from_dict,
    load_config,
    read_yaml,
    to_dict,
    with_dotted,
)
from pipeline.config.tune import PrunerConfig, SearchDimension, TuneConfig

__all__ = ["BaseConfig", "Bound", "CVConfig", "Config", "ConfigError", "DataConfig",
           "EnsembleConfig", "FeaturesConfig", "ModelConfig", "PrunerConfig",
           "ReferenceConfig", "SearchDimension", "TrackingConfig", "TuneConfig",
           "config_from_dict", "load_config", "read_yaml", "to_dict", "with_dotted"]
