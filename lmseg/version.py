"""The version of lmseg (recorded in reports and protocol records)."""

__version__ = "0.1.0"
