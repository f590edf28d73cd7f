"""Typed driver failures.

Every failure a driver can raise is a DriverError whose str() is one clear
line fit for a notification or a CLI error; nothing else may escape a driver.
"""

from __future__ import annotations


class DriverError(Exception):
    """Base of every failure a driver reports."""


class InvalidURI(DriverError):
    """The URI is malformed or names a scheme no driver serves."""


class ConnectionFailed(DriverError):
    """The host could not be reached or its node description not loaded."""


class ParseError(DriverError):
    """A host answered with something that is not what libvirt produces."""


class DomainNotFound(DriverError):
    """No domain with that UUID on that host."""


class OperationInvalid(DriverError):
    """The action does not fit the domain's state, as libvirt's VIR_ERR_OPERATION_INVALID."""


class LeaseConflict(DriverError):
    """A disk lease is held elsewhere, so the domain may not start."""


class NotSupported(DriverError):
    """This host's driver cannot do that (an embedded host has no serial console, say)."""
