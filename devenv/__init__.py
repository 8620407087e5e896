"""devenv: a faithful local copy of Nedlia's hybrid AWS backend."""

__version__ = "0.1.0"
