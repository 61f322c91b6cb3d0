"""Décroché: telephony quality for French town halls (Marianne / Services Publics+ Engagement 8)."""
