"""The HTTP API (``/api/v1``), health and metrics."""
