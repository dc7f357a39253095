"""Config: YAML → validated pydantic models (with line numbers in every error)."""

from evaltool.config.loader import Config, config_model, load_config, parse_config
from evaltool.config.models import AnalysisBase, ConfigModel

__all__ = ["AnalysisBase", "Config", "ConfigModel", "config_model", "load_config", "parse_config"]
