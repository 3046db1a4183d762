"""Custodes: evidence preservation and triage for footage from places of detention."""

__version__ = "0.1.0"
