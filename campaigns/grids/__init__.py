"""Mystery-call grids: the TOML model (pure), where grid files are found, the stored versions."""
