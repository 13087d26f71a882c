"""A local Monetate Auth + Data API sandbox that follows the reference strictly."""

from .faults import FaultConfig
from .requestlog import LoggedRequest
from .sandbox import MonetateSandbox

__all__ = ["FaultConfig", "LoggedRequest", "MonetateSandbox"]
