"""Driver interfaces (compute, network, amphora) and how the configuration picks them."""
from __future__ import annotations

from dataclasses import dataclass

from lbaas.config import Settings
from lbaas.drivers.amphora.base import AmphoraDriver
from lbaas.drivers.compute.base import ComputeDriver
from lbaas.drivers.network.base import NetworkDriver


@dataclass
class Drivers:
    compute: ComputeDriver
    network: NetworkDriver
    amphora: AmphoraDriver


class DriverNotFound(Exception):
    pass


def load(settings: Settings) -> Drivers:
    """The drivers named in ``[controller_worker]``."""
    from lbaas.drivers.amphora.noop import NoopAmphoraDriver
    from lbaas.drivers.compute.noop import NoopComputeDriver
    from lbaas.drivers.network.noop import NoopNetworkDriver

    available = {
        "compute_driver": {"compute_noop_driver": NoopComputeDriver},
        "network_driver": {"network_noop_driver": NoopNetworkDriver},
        "amphora_driver": {"amphora_noop_driver": NoopAmphoraDriver},
    }
    chosen = {}
    for option, choices in available.items():
        name = getattr(settings.controller_worker, option)
        if name not in choices:
            raise DriverNotFound(
                f"[controller_worker] {option} = {name} is not available; choose one of: "
                f"{', '.join(sorted(choices))}")
        chosen[option] = choices[name]()
    return Drivers(compute=chosen["compute_driver"], network=chosen["network_driver"],
                   amphora=chosen["amphora_driver"])
