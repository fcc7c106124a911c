"""The advice stage: :class:`Settings` (what is asked) and :func:`analyse` (the one
pipeline from a history to risk and advice), which every entry point calls."""

from advisor.advice.analyse import Analysis, analyse
from advisor.advice.settings import DEFAULT_TARGET, Settings, Window

__all__ = ["DEFAULT_TARGET", "Analysis", "Settings", "Window", "analyse"]
