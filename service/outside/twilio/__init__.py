"""Twilio: its REST API (``rest``), the one client factory and the app's context
(``client``), and its request signatures (``signing``)."""
