"""bcrypt at cost 12 over a SHA-256 pre-hash, so long passwords count in full."""

from django.contrib.auth.hashers import BCryptSHA256PasswordHasher


class BCryptSHA256Cost12PasswordHasher(BCryptSHA256PasswordHasher):
    # Same algorithm name as Django's, so hashes stay verifiable if the class moves.
    rounds = 12
