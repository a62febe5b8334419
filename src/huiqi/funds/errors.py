"""Errors of the enterprise side of special funds: calls and applications."""

from __future__ import annotations

from huiqi.core.errors import Conflict, Forbidden, Invalid, NotFound


class FundsError(Invalid):
    """A fund, call or application request the domain refuses (422)."""


class FundsNotFound(NotFound, FundsError):
    """No such fund, call or application — or not one the user may see (404)."""


class FundsForbidden(Forbidden, FundsError):
    """The user may not do this to the object (403)."""


class FundsConflict(Conflict, FundsError):
    """The object is not in a state that allows this (409)."""
