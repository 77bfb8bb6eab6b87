"""The local network registry: networks (Linux bridges), subnets and the addresses on them.

Without Neutron the service keeps its own small, admin-managed registry (issue 3):

- ``addresses``: subnet arithmetic and validation (CIDR, gateway, allocation pools).
- ``registry``: networks and subnets in the database.
- ``ports``: handing out and releasing addresses; a database unique constraint makes sure
  an address is never held twice, across restarts and concurrent allocators.
- ``bridge``: the Linux bridge behind each network (iproute2).
- ``management``: the ``lbaas-mgmt`` network the controller and amphorae talk over.
- ``cli``: ``lbaas network ...`` and ``lbaas subnet ...``.
"""
