"""The experiment config: a YAML file validated by pydantic v2.

:func:`load_config` (path, ``--set`` overrides) is the one way in: :mod:`dlexp.config.load` reads
the file, applies the overrides and turns every mistake into one line; :mod:`dlexp.config.schema`
holds the models, each field with its type, range and default; :mod:`dlexp.config.components`
checks the component fields (activation, init, loss, optimizer, schedule) against their registries.
"""

from dlexp.config.components import _short_repr, scientific_to_float, spec_names
from dlexp.config.load import (
    MAX_CONFIG_BYTES,
    MAX_YAML_NODES,
    ConfigLoader,
    _format_loc,
    apply_override,
    config_base_dir,
    default_name,
    format_validation_error,
    load_config,
    load_mapping,
    parse_key,
    parse_override,
    parse_value,
    parse_yaml_mapping,
    read_yaml_mapping,
    validate_mapping,
    yaml_load,
)
from dlexp.config.schema import (
    MAX_BATCH_SIZE,
    MAX_PARAMETERS,
    NAME_PATTERN,
    OMITTED_AT_DEFAULT,
    DataConfig,
    DivergenceConfig,
    EarlyStoppingConfig,
    ExperimentConfig,
    LoggingConfig,
    ModelConfig,
    ResidualConfig,
    StrictModel,
    TrainingConfig,
    check_parameter_count,
    parameter_count,
    resolved_dict,
)

__all__ = [
    "MAX_BATCH_SIZE", "MAX_CONFIG_BYTES", "MAX_PARAMETERS", "MAX_YAML_NODES", "NAME_PATTERN", "OMITTED_AT_DEFAULT",
    "ConfigLoader", "DataConfig", "DivergenceConfig", "EarlyStoppingConfig", "ExperimentConfig", "LoggingConfig",
    "ModelConfig", "ResidualConfig", "StrictModel", "TrainingConfig", "_format_loc", "_short_repr",
    "apply_override", "check_parameter_count", "config_base_dir", "default_name", "format_validation_error",
    "load_config", "load_mapping", "parameter_count", "parse_key", "parse_override", "parse_value",
    "parse_yaml_mapping", "read_yaml_mapping", "resolved_dict", "scientific_to_float", "spec_names",
    "validate_mapping", "yaml_load",
]
