"""Errors of the network registry; each message names the value and says what to do."""
from __future__ import annotations


class NetworkError(Exception):
    """Base class: the message is meant for the operator as it is."""


class NotFound(NetworkError):
    """No network, subnet or port with that name or id."""


class Duplicate(NetworkError):
    """The name (or interface) is already taken by another network or subnet."""


class InUse(NetworkError):
    """The network or subnet still has addresses handed out; it cannot be deleted."""


class InvalidNetwork(NetworkError):
    """A network's name, interface or MTU breaks a rule."""


class InvalidSubnet(NetworkError):
    """A CIDR, gateway or allocation pool breaks a rule."""


class InvalidAddress(NetworkError):
    """A requested address cannot be used on that subnet."""


class AddressInUse(NetworkError):
    """The requested address is already held by someone else."""


class NoFreeAddress(NetworkError):
    """Every address of the subnet's allocation pools is taken."""


class BridgeError(NetworkError):
    """An iproute2 command on a bridge failed."""
