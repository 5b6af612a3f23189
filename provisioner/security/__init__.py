"""Passwords, tokens and secrets at rest."""
