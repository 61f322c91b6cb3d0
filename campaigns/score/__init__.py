"""Scoring (pure): one evaluated call, a campaign's results and their intervals, and the
cross-check with the telephony."""
