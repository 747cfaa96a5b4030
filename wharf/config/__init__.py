"""Configuration: the typed model of `wharf.toml` and the loader that validates it once."""

from wharf.config.load import config_from_data, default_state_dir, load_config, state_dir_of
from wharf.config.model import AppConfig, Config, DaemonConfig

__all__ = ["AppConfig", "Config", "DaemonConfig", "config_from_data", "default_state_dir",
           "load_config", "state_dir_of"]
