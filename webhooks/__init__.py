"""Inbound adapters: verify, parse and normalise what phone systems send; hand it to the core."""
