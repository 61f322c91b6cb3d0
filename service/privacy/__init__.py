"""Callers' numbers and recordings are personal data: pseudonyms, retention and erasure.

``pseudonyms`` and ``scrub`` are pure; ``retention`` (the scheduled expiry of numbers and
recordings) and ``erasure`` (one caller's data, on request) write through ``queries``.
"""

from service.privacy.pseudonyms import ERASED, Pseudonymiser, canonical

__all__ = ["ERASED", "Pseudonymiser", "canonical"]
