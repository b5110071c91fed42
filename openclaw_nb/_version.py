"""The package version, read by hatchling and packed into ``iLink-App-ClientVersion``."""

__version__ = "0.1.0"
