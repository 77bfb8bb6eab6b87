"""The compute agent's REST API (``/1.0``), served over mutual TLS (``serve``).

Every call can be repeated: building a built amphora finishes or confirms it, deleting a
removed one or plugging a plugged port changes nothing.
"""
from __future__ import annotations

import base64
import logging
import ssl
from typing import Any

from fastapi import FastAPI, HTTPException, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from lbaas.amphora.agent.logs import LogOffload
from lbaas.compute_agent.host import AgentSettings, ComputeHost
from lbaas.compute_flavors import Resources
from lbaas.drivers.compute.netns import ComputeError
from lbaas.drivers.network.base import Port
from lbaas.network import segments
from lbaas.network.errors import BridgeError

LOG = logging.getLogger(__name__)
AmphoraId = Path(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class PortBody(BaseModel):
    id: str
    network_id: str | None = None
    subnet_id: str | None = None
    ip_address: str
    subnet_cidr: str | None = None
    gateway: str | None = None
    bridge: str | None = None
    mtu: int | None = None
    mac_address: str | None = None

    def port(self) -> Port:
        return Port(**self.model_dump())


class SegmentBody(BaseModel):
    network_id: str
    bridge: str
    network_type: str = segments.LOCAL
    mtu: int = 1500
    segmentation_id: int | None = None
    physical_network: str | None = None
    physical_interface: str | None = None
    peers: list[str] = []

    def segment(self) -> segments.Segment:
        return segments.Segment.from_dict(self.model_dump())


class AgentBody(BaseModel):
    bind_port: int
    controller_ip_port_list: list[str]
    heartbeat_interval: float
    log_offload: dict[str, Any] = {}


class ResourcesBody(BaseModel):
    ram_mb: int = Field(ge=16)
    vcpus: float = Field(gt=0)


class BuildBody(BaseModel):
    management_port: PortBody
    segment: SegmentBody
    files: dict[str, str]  # base64
    agent: AgentBody
    image_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$")
    resources: ResourcesBody | None = None


class PlugBody(BaseModel):
    port: PortBody
    segment: SegmentBody


def create_app(host: ComputeHost) -> FastAPI:
    app = FastAPI(title="lbaas compute agent", docs_url=None, redoc_url=None)

    @app.exception_handler(BridgeError)
    @app.exception_handler(ComputeError)
    async def refused(_request: Any, exc: Exception) -> JSONResponse:
        LOG.warning("refused: %s", exc)
        return JSONResponse({"message": str(exc)}, status_code=409)

    @app.get("/1.0/status")
    def status() -> dict[str, Any]:
        return host.status()

    @app.put("/1.0/networks/{network_id}")
    def ensure_network(network_id: str, body: SegmentBody) -> dict[str, str]:
        if body.network_id != network_id:
            raise HTTPException(400, "the body names another network")
        host.ensure_segment(body.segment())
        return {"message": "OK"}

    @app.post("/1.0/amphorae/{amphora_id}")
    def build(body: BuildBody, amphora_id: str = AmphoraId) -> dict[str, Any]:
        agent = AgentSettings(body.agent.bind_port, tuple(body.agent.controller_ip_port_list),
                              body.agent.heartbeat_interval,
                              LogOffload.from_dict(body.agent.log_offload))
        files = {name: base64.b64decode(content) for name, content in body.files.items()}
        resources = Resources(body.resources.ram_mb, body.resources.vcpus) \
            if body.resources else None
        instance = host.build(amphora_id, body.management_port.port(), body.segment.segment(),
                              files, agent, body.image_id, resources)
        LOG.info("amphora %s built (%s)", amphora_id, instance.compute_id)
        return {"compute_id": instance.compute_id, "lb_network_ip": instance.lb_network_ip,
                "host": instance.host}

    @app.delete("/1.0/amphorae/{amphora_id}")
    def delete(amphora_id: str = AmphoraId) -> dict[str, str]:
        host.delete(amphora_id)
        LOG.info("amphora %s removed", amphora_id)
        return {"message": "OK"}

    @app.put("/1.0/amphorae/{amphora_id}/ports/{port_id}")
    def attach(port_id: str, body: PlugBody, amphora_id: str = AmphoraId) -> dict[str, str]:
        if body.port.id != port_id:
            raise HTTPException(400, "the body names another port")
        return {"mac_address": host.attach(amphora_id, body.port.port(), body.segment.segment())}

    @app.delete("/1.0/amphorae/{amphora_id}/ports/{port_id}")
    def detach(port_id: str, amphora_id: str = AmphoraId) -> dict[str, str]:
        host.detach(amphora_id, Port(id=port_id, network_id=None, subnet_id=None,
                                     ip_address=""))
        return {"message": "OK"}

    return app


def serve(host: ComputeHost, bind_host: str, bind_port: int, server_cert: str,
          client_ca: str) -> None:
    """Serve until stopped (blocks): TLS 1.2+, our certificate, callers' from the client CA."""
    import uvicorn

    uvicorn.run(create_app(host), host=bind_host, port=bind_port, log_level="warning",
                ssl_certfile=server_cert, ssl_ca_certs=client_ca,
                ssl_cert_reqs=ssl.CERT_REQUIRED)
