"""Contract checks: every exchange with a sandbox held to Monetate's published OpenAPI documents."""

from .checker import ContractChecker, Violation

__all__ = ["ContractChecker", "Violation"]
