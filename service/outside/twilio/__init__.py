"""Twilio: its REST API (``rest``) and its request signatures (``signing``)."""
