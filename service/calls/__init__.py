"""Calls: the normalised events, the fold into calls, and their storage."""
