"""Engagement 8 figures: exact definitions (``definitions``), their SQL (``queries``), reports."""
