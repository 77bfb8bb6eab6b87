"""Listeners: create, show, list, update, delete, statistics and upstream's validation rules."""
from __future__ import annotations

import uuid

import pytest

from lbaas.db.models import Amphora, ListenerStatistics
from tests.helpers import PROJECT, wait_for
from tests.helpers.api import (
    amphora_updates_held,
    as_member,
    create_lb,
    create_listener,
    create_pool,
    fault,
    store_tls_refs,
    wait_active,
    wait_gone,
    wait_lb_active,
)

LISTENERS = "/v2/lbaas/listeners"


def post(client, lb_id, protocol="HTTP", protocol_port=80, **fields):
    body = {"loadbalancer_id": lb_id, "protocol": protocol, "protocol_port": protocol_port,
            **fields}
    return client.post(LISTENERS, json={"listener": body})


def put(client, listener_id, **fields):
    return client.put(f"{LISTENERS}/{listener_id}", json={"listener": fields})


@pytest.fixture
def lb(client):
    return create_lb(client)


def test_create_listener_goes_pending_then_active_with_upstream_defaults(client, lb):
    response = post(client, lb["id"], name="web")
    assert response.status_code == 201, response.text
    listener = response.json()["listener"]
    assert listener["provisioning_status"] == "PENDING_CREATE"
    assert listener["operating_status"] == "OFFLINE"
    assert listener["project_id"] == PROJECT
    assert listener["loadbalancers"] == [{"id": lb["id"]}]
    assert listener["l7policies"] == []
    assert listener["connection_limit"] == -1
    timeouts = ("timeout_client_data", "timeout_member_connect", "timeout_member_data",
                "timeout_tcp_inspect")
    assert [listener[name] for name in timeouts] == [50000, 5000, 50000, 0]
    assert listener["insert_headers"] == {}
    assert listener["allowed_cidrs"] is None
    assert listener["sni_container_refs"] == []
    assert listener["client_authentication"] == "NONE"
    assert listener["tls_ciphers"] is None and listener["tls_versions"] is None
    assert listener["hsts_max_age"] is None and listener["hsts_preload"] is False
    wait_lb_active(client, lb["id"])
    active = wait_active(client, f"{LISTENERS}/{listener['id']}", "listener")
    assert active["name"] == "web"
    assert client.get(f"/v2/lbaas/loadbalancers/{lb['id']}").json()["loadbalancer"]["listeners"] \
        == [{"id": listener["id"]}]


def test_listener_timeouts_default_from_haproxy_amphora_settings(client, lb, settings):
    settings.haproxy_amphora.timeout_client_data = 1234
    listener = post(client, lb["id"]).json()["listener"]
    assert listener["timeout_client_data"] == 1234


@pytest.mark.parametrize(("field", "value"), [
    ("timeout_client_data", 24 * 24 * 3600 * 1000 + 1),
    ("timeout_member_connect", -1),
    ("connection_limit", -2),
    ("connection_limit", 2**63),  # beyond any database's INTEGER
    ("protocol_port", 0),
    ("protocol_port", 65536),
    ("protocol", "FTP"),
    ("client_authentication", "SOMETIMES"),
    ("allowed_cidrs", ["10.0.0.0/33"]),
    ("alpn_protocols", ["spdy/3"]),
    ("tls_ciphers", "ECDHE RSA"),
    ("hsts_max_age", -1),
    ("hsts_max_age", 2**31),
])
def test_out_of_range_field_is_rejected_naming_field_and_value(client, lb, field, value):
    fields = {"protocol": "HTTP", "protocol_port": 80, field: value}
    text = fault(client.post(LISTENERS, json={"listener": {"loadbalancer_id": lb["id"], **fields}}),
                 400)
    assert text.startswith(f"Invalid input for field/attribute {field}.")


def test_timeout_of_24_days_is_the_maximum(client, lb):
    response = post(client, lb["id"], timeout_member_data=24 * 24 * 3600 * 1000)
    assert response.status_code == 201, response.text


def test_listener_on_unknown_load_balancer_is_rejected(client):
    missing = str(uuid.uuid4())
    assert fault(post(client, missing), 400) == f"Load Balancer {missing} not found."


def test_listener_without_required_fields_is_rejected(client, lb):
    text = fault(client.post(LISTENERS, json={"listener": {"loadbalancer_id": lb["id"],
                                                           "protocol": "HTTP"}}), 400)
    assert text == ("Invalid input for field/attribute protocol_port. Value: 'None'. "
                    "Mandatory field missing.")


def test_same_port_in_the_same_l4_space_conflicts(client, lb):
    create_listener(client, lb["id"], "HTTP", 80)
    text = fault(post(client, lb["id"], "TCP", 80), 409)
    assert text == ("Another Listener on this Load Balancer is already using protocol HTTP "
                    "and protocol_port 80")
    fault(post(client, lb["id"], "PROMETHEUS", 80), 409)


def test_udp_and_sctp_have_their_own_port_spaces(client, lb):
    create_listener(client, lb["id"], "TCP", 53)
    create_listener(client, lb["id"], "UDP", 53)
    create_listener(client, lb["id"], "SCTP", 53)
    assert fault(post(client, lb["id"], "UDP", 53), 409).endswith(
        "protocol UDP and protocol_port 53")


def test_same_port_on_another_load_balancer_is_fine(client, lb):
    create_listener(client, lb["id"], "HTTP", 80)
    other = create_lb(client)
    create_listener(client, other["id"], "HTTP", 80)


@pytest.mark.parametrize(("protocol", "headers", "message"), [
    ("TCP", {"X-Forwarded-For": "true"},
     "insert-headers is not a valid option for a TCP protocol listener."),
    ("UDP", {"X-Forwarded-For": "true"},
     "insert-headers is not a valid option for a UDP protocol listener."),
    ("HTTP", {"X-Bogus": "true"}, "X-Bogus is not a valid option for insert_headers"),
    ("HTTP", {"X-Forwarded-For": "true", "X-SSL-Client-DN": "true"},
     "X-SSL-Client-DN is not a valid option for HTTP protocol listener."),
])
def test_insert_headers_are_checked_per_protocol(client, lb, protocol, headers, message):
    assert fault(post(client, lb["id"], protocol, insert_headers=headers), 400) == message


def test_allowed_insert_headers_are_stored(client, lb):
    headers = {"X-Forwarded-For": "true", "X-Forwarded-Port": "false"}
    listener = create_listener(client, lb["id"], "HTTP", 80, insert_headers=headers)
    assert listener["insert_headers"] == headers


@pytest.fixture
def refs(services):
    return store_tls_refs(services.api_state.cert_manager, PROJECT)


@pytest.mark.parametrize("fields", [
    {"default_tls_container_ref": "default", "sni_container_refs": ["sni-a", "sni-b"]},
    {"default_tls_container_ref": "default",
     "insert_headers": {"X-Forwarded-For": "true", "X-SSL-Client-DN": "true"}},
    {"sni_container_refs": ["sni-a"], "client_ca_tls_container_ref": "ca",
     "client_authentication": "OPTIONAL", "client_crl_container_ref": "crl"},
    {"default_tls_container_ref": "default", "hsts_max_age": 31536000,
     "hsts_include_subdomains": True, "hsts_preload": True},
])
def test_terminated_https_listener_with_readable_references_goes_active(client, lb, refs,
                                                                        fields):
    body = {key: ([refs[ref] for ref in value] if key == "sni_container_refs"
                  else refs[value] if key.endswith("_ref") else value)
            for key, value in fields.items()}
    response = post(client, lb["id"], "TERMINATED_HTTPS", 443, **body)
    assert response.status_code == 201, response.text
    listener = wait_active(client, f"{LISTENERS}/{response.json()['listener']['id']}", "listener")
    assert listener["tls_versions"] == ["TLSv1.2", "TLSv1.3"]
    assert listener["alpn_protocols"] == ["h2", "http/1.1", "http/1.0"]
    for key, value in body.items():
        assert listener[key] == value


@pytest.mark.parametrize(("fields", "message"), [
    ({"default_tls_container_ref": "no-such-ref"},
     "Could not retrieve certificate: no-such-ref (secret no-such-ref not found)"),
    ({"default_tls_container_ref": "foreign"},
     "Could not retrieve certificate: {foreign} (secret {foreign} not found)"),
    ({"default_tls_container_ref": "default", "sni_container_refs": ["ca"]},
     "Could not retrieve certificate: {ca} (secret {ca} holds no certificate and private key)"),
    ({"default_tls_container_ref": "default", "client_ca_tls_container_ref": "not-a-ca",
      "client_authentication": "MANDATORY"},
     ("Validation failure: The client authentication CA certificate is invalid. It must be a "
      "valid x509 PEM format certificate.")),
    ({"default_tls_container_ref": "default", "client_ca_tls_container_ref": "ca",
      "client_crl_container_ref": "ca"},
     ("Validation failure: The client authentication certificate revocation list is invalid. "
      "It must be a valid x509 PEM format certificate revocation list.")),
    ({"default_tls_container_ref": "default", "client_ca_tls_container_ref": "ca",
      "client_crl_container_ref": "other-crl"},
     ("Validation failure: The CRL specified is not valid for client authentication "
      "certificate authority reference supplied.")),
])
def test_unusable_certificate_references_are_refused(client, lb, refs, fields, message):
    """As upstream: unreadable, another project's (the caller is not an admin here), not a
    certificate, not a CA, not a CRL of that CA. noauth callers are admins, so the test
    asks as a member of the project through a context without admin."""
    body = {key: ([refs.get(ref, ref) for ref in value] if key == "sni_container_refs"
                  else refs.get(value, value) if key.endswith("_ref") else value)
            for key, value in fields.items()}
    with as_member(client):
        text = fault(post(client, lb["id"], "TERMINATED_HTTPS", 443, **body), 400)
    assert text == message.format(**refs)


def test_replacing_the_certificate_is_an_update_that_goes_active(client, lb, refs):
    listener = create_listener(client, lb["id"], "TERMINATED_HTTPS", 443,
                               default_tls_container_ref=refs["default"])
    wait_active(client, f"{LISTENERS}/{listener['id']}", "listener")
    assert put(client, listener["id"], default_tls_container_ref=refs["sni-a"]).status_code == 200
    updated = wait_active(client, f"{LISTENERS}/{listener['id']}", "listener")
    assert updated["default_tls_container_ref"] == refs["sni-a"]
    assert fault(put(client, listener["id"], default_tls_container_ref="gone"), 400).startswith(
        "Could not retrieve certificate: gone")


def test_an_update_checks_only_the_references_it_changes(client, lb, refs):
    """An admin set another project's certificate: the project's member can still rename
    the listener, but not set another project's certificate itself."""
    listener = create_listener(client, lb["id"], "TERMINATED_HTTPS", 443,
                               default_tls_container_ref=refs["foreign"])
    path = f"{LISTENERS}/{listener['id']}"
    wait_active(client, path, "listener")
    with as_member(client):
        assert put(client, listener["id"], name="renamed").status_code == 200
        wait_active(client, path, "listener")
        assert put(client, listener["id"],
                   default_tls_container_ref=refs["default"]).status_code == 200
        wait_active(client, path, "listener")
        assert fault(put(client, listener["id"], default_tls_container_ref=refs["foreign"]),
                     400) == (f"Could not retrieve certificate: {refs['foreign']} (secret "
                              f"{refs['foreign']} not found)")


@pytest.mark.parametrize("protocol", ["UDP", "SCTP"])
def test_datagram_listener_rejects_tls(client, lb, protocol):
    text = fault(post(client, lb["id"], protocol, default_tls_container_ref="tls-ref"), 400)
    assert text == f"Validation failure: {protocol} protocol listener does not support TLS."


@pytest.mark.parametrize(("fields", "message"), [
    ({"protocol": "HTTP", "default_tls_container_ref": "tls-ref"},
     "Certificate container references are only allowed on TERMINATED_HTTPS protocol "
     "listeners."),
    ({"protocol": "TERMINATED_HTTPS"},
     "An SNI or default certificate container reference must be provided for "
     "TERMINATED_HTTPS protocol listeners."),
    ({"protocol": "TERMINATED_HTTPS", "client_ca_tls_container_ref": "ca-ref"},
     "An SNI or default certificate container reference must be provided with a client CA "
     "container reference."),
    ({"protocol": "TERMINATED_HTTPS", "sni_container_refs": ["sni"],
      "client_authentication": "MANDATORY"},
     "Client authentication setting MANDATORY requires a client CA container reference."),
    ({"protocol": "TERMINATED_HTTPS", "default_tls_container_ref": "tls-ref",
      "client_crl_container_ref": "crl-ref"},
     "A client authentication CA reference is required to specify a client authentication "
     "revocation list."),
])
def test_certificate_reference_rules(client, lb, fields, message):
    assert fault(post(client, lb["id"], protocol_port=443, **fields), 400) == \
        f"Validation failure: {message}"


@pytest.mark.parametrize(("fields", "message"), [
    ({"tls_versions": []}, "Empty TLS version list. Either specify at least one TLS version or "
                           "remove this parameter to use the default."),
    ({"tls_versions": ["TLSv1.2", "TLSv9"]}, "Invalid TLS versions: TLSv9"),
    ({"alpn_protocols": []}, "Empty ALPN protocol list. Either specify at least one ALPN "
                             "protocol or remove this parameter to use the default."),
    ({"hsts_max_age": 10, "hsts_preload": True, "protocol": "HTTP"},
     "The HSTS feature can only be used for listeners using the TERMINATED_HTTPS protocol."),
    ({"hsts_include_subdomains": True},
     "HSTS configuration options hsts_include_subdomains and hsts_preload only make sense if "
     "hsts_max_age is set as well."),
])
def test_tls_option_rules(client, lb, fields, message):
    body = {"protocol": "TERMINATED_HTTPS", "default_tls_container_ref": "tls-ref", **fields}
    if body["protocol"] == "HTTP":
        del body["default_tls_container_ref"]
    assert fault(post(client, lb["id"], protocol_port=443, **body), 400) == \
        f"Validation failure: {message}"


def test_tls_versions_below_the_configured_minimum_are_rejected(client, lb, settings):
    settings.api_settings.minimum_tls_version = "TLSv1.2"
    text = fault(post(client, lb["id"], "TERMINATED_HTTPS", 443,
                      default_tls_container_ref="tls-ref", tls_versions=["TLSv1.1", "TLSv1.2"]),
                 400)
    assert text == ("Validation failure: Requested TLS versions are less than the minimum: "
                    "TLSv1.1 < TLSv1.2")


def test_prohibited_ciphers_are_rejected(client, lb, settings):
    settings.api_settings.tls_cipher_prohibit_list = "RC4-MD5:DES-CBC3-SHA"
    text = fault(post(client, lb["id"], "TERMINATED_HTTPS", 443,
                      default_tls_container_ref="tls-ref",
                      tls_ciphers="ECDHE-RSA-AES128-GCM-SHA256:RC4-MD5"), 400)
    assert text == ("Validation failure: The following ciphers have been prohibited by an "
                    "administrator: RC4-MD5")


@pytest.mark.parametrize(("option", "protocol", "extra"), [
    ("allow_tls_terminated_listeners", "TERMINATED_HTTPS", {"default_tls_container_ref": "t"}),
    ("allow_prometheus_listeners", "PROMETHEUS", {}),
])
def test_protocol_disabled_by_the_operator_is_rejected(client, lb, settings, option, protocol,
                                                       extra):
    setattr(settings.api_settings, option, False)
    assert fault(post(client, lb["id"], protocol, 9100, **extra), 400) == \
        f"The selected protocol is not allowed in this deployment: {protocol}"


def test_allowed_cidrs_are_normalized_and_deduplicated(client, lb):
    listener = create_listener(client, lb["id"], allowed_cidrs=["10.0.0.1/8", "10.0.0.0/8",
                                                                "192.168.1.0/24"])
    assert listener["allowed_cidrs"] == ["10.0.0.0/8", "192.168.1.0/24"]


def test_allowed_cidr_of_another_ip_family_than_the_vip_is_rejected(client, lb):
    text = fault(post(client, lb["id"], allowed_cidrs=["2001:db8::/32"]), 400)
    assert text == (f"Validation failure: CIDR 2001:db8::/32 IP version incompatible with all "
                    f"VIPs {lb['vip_address']} IP version.")


def test_allowed_cidrs_are_refused_with_vip_security_groups(client):
    lb = create_lb(client, vip_sg_ids=[str(uuid.uuid4())])
    text = fault(post(client, lb["id"], allowed_cidrs=["10.0.0.0/8"]), 400)
    assert text == ("Validation failure: Allowed CIDRs are not allowed when using custom VIP "
                    "Security Groups.")


def test_create_with_default_pool_links_both_ways(client, lb):
    pool = create_pool(client, lb["id"], "HTTP")
    listener = create_listener(client, lb["id"], default_pool_id=pool["id"])
    assert listener["default_pool_id"] == pool["id"]
    shown = client.get(f"/v2/lbaas/pools/{pool['id']}").json()["pool"]
    assert shown["listeners"] == [{"id": listener["id"]}]


def test_default_pool_with_unfit_protocol_is_rejected(client, lb):
    pool = create_pool(client, lb["id"], "TCP")
    assert fault(post(client, lb["id"], "HTTP", default_pool_id=pool["id"]), 400) == (
        "Validation failure: The pool protocol 'TCP' is invalid while the listener protocol "
        "is 'HTTP'.")


def test_prometheus_listener_cannot_have_a_default_pool(client, lb):
    pool = create_pool(client, lb["id"], "HTTP")
    assert fault(post(client, lb["id"], "PROMETHEUS", 9100, default_pool_id=pool["id"]), 400) \
        == "Protocol PROMETHEUS listeners cannot have child objects."


def test_default_pool_of_another_load_balancer_is_not_found(client, lb):
    other = create_lb(client)
    pool = create_pool(client, other["id"], "HTTP")
    assert fault(post(client, lb["id"], default_pool_id=pool["id"]), 404) == \
        f"Pool {pool['id']} not found."


def test_update_returns_new_values_and_settles(client, lb):
    listener = create_listener(client, lb["id"], name="before")
    response = put(client, listener["id"], name="after", connection_limit=100,
                   insert_headers={"X-Forwarded-For": "true"}, tags=["blue"])
    assert response.status_code == 200, response.text
    body = response.json()["listener"]
    assert body["provisioning_status"] == "PENDING_UPDATE"
    assert (body["name"], body["connection_limit"], body["tags"]) == ("after", 100, ["blue"])
    assert body["insert_headers"] == {"X-Forwarded-For": "true"}
    wait_lb_active(client, lb["id"])
    assert wait_active(client, f"{LISTENERS}/{listener['id']}", "listener")["name"] == "after"


def test_update_null_resets_to_defaults(client, lb):
    listener = create_listener(client, lb["id"], connection_limit=10, timeout_client_data=7,
                               allowed_cidrs=["10.0.0.0/8"], tags=["a"], admin_state_up=False,
                               insert_headers={"X-Forwarded-Port": "true"})
    body = put(client, listener["id"], connection_limit=None, timeout_client_data=None,
               allowed_cidrs=None, tags=None, admin_state_up=None, insert_headers=None).json()
    body = body["listener"]
    assert (body["connection_limit"], body["timeout_client_data"]) == (-1, 50000)
    assert (body["allowed_cidrs"], body["tags"], body["insert_headers"]) == (None, [], {})
    assert body["admin_state_up"] is True


def test_update_cannot_change_protocol_or_port(client, lb):
    listener = create_listener(client, lb["id"])
    assert "protocol" in fault(put(client, listener["id"], protocol="TCP"), 400)
    assert "protocol_port" in fault(put(client, listener["id"], protocol_port=81), 400)


def test_update_applies_the_create_rules(client, lb):
    listener = create_listener(client, lb["id"], "UDP", 53)
    assert fault(put(client, listener["id"], insert_headers={"X-Forwarded-For": "true"}), 400) \
        == "insert-headers is not a valid option for a UDP protocol listener."
    assert fault(put(client, listener["id"], default_tls_container_ref="tls-ref"), 400) == \
        "Validation failure: UDP protocol listener does not support TLS."


def test_update_sets_and_clears_the_default_pool(client, lb):
    listener = create_listener(client, lb["id"])
    pool = create_pool(client, lb["id"], "HTTP")
    assert put(client, listener["id"], default_pool_id=pool["id"]).json()["listener"][
        "default_pool_id"] == pool["id"]
    wait_lb_active(client, lb["id"])
    assert put(client, listener["id"], default_pool_id=None).json()["listener"][
        "default_pool_id"] is None
    wait_lb_active(client, lb["id"])
    assert client.get(f"/v2/lbaas/pools/{pool['id']}").json()["pool"]["listeners"] == []


def test_delete_removes_the_listener_and_keeps_its_pool(client, lb):
    pool = create_pool(client, lb["id"], "HTTP")
    listener = create_listener(client, lb["id"], default_pool_id=pool["id"])
    assert client.delete(f"{LISTENERS}/{listener['id']}").status_code == 204
    wait_gone(client, f"{LISTENERS}/{listener['id']}")
    wait_lb_active(client, lb["id"])
    assert client.get(f"/v2/lbaas/pools/{pool['id']}").json()["pool"]["listeners"] == []


@pytest.mark.parametrize(("method", "suffix"), [
    ("get", ""), ("put", ""), ("delete", ""), ("get", "/stats")])
def test_unknown_listener_is_404(client, method, suffix):
    missing = str(uuid.uuid4())
    kwargs = {"json": {"listener": {"name": "x"}}} if method == "put" else {}
    response = client.request(method.upper(), f"{LISTENERS}/{missing}{suffix}", **kwargs)
    assert fault(response, 404) == f"Listener {missing} not found."


def test_listener_on_pending_load_balancer_is_409(api_only):
    lb = api_only.post("/v2/lbaas/loadbalancers", json={"loadbalancer": {
        "vip_subnet_id": "8c1a4e5c-9b1f-4d5c-8f5e-0a6f3e2b9c10"}}).json()["loadbalancer"]
    assert fault(post(api_only, lb["id"]), 409) == \
        f"Load Balancer {lb['id']} is immutable and cannot be updated."


def test_second_change_while_the_first_is_pending_is_409(client, lb, drivers):
    listener = create_listener(client, lb["id"])
    with amphora_updates_held(drivers):
        assert put(client, listener["id"], name="first").status_code == 200
        assert fault(put(client, listener["id"], name="second"), 409) == \
            f"Load Balancer {lb['id']} is immutable and cannot be updated."
        fault(client.delete(f"{LISTENERS}/{listener['id']}"), 409)
        fault(post(client, lb["id"], protocol_port=81), 409)
    wait_lb_active(client, lb["id"])
    assert client.get(f"{LISTENERS}/{listener['id']}").json()["listener"]["name"] == "first"


def test_failed_change_leaves_listener_in_error_and_lb_active(client, lb, drivers):
    def broken(*_args, **_kwargs):
        raise RuntimeError("amphora unreachable")
    drivers.amphora.update = broken
    listener = post(client, lb["id"]).json()["listener"]
    wait_for(lambda: client.get(f"{LISTENERS}/{listener['id']}").json()["listener"],
             "provisioning_status", "ERROR")
    wait_lb_active(client, lb["id"])
    assert client.delete(f"{LISTENERS}/{listener['id']}").status_code == 204


def test_listener_quota_is_enforced(client, lb):
    client.put(f"/v2/lbaas/quotas/{PROJECT}", json={"quota": {"listener": 1}})
    create_listener(client, lb["id"])
    assert fault(post(client, lb["id"], protocol_port=81), 403).startswith(
        "Quota has been met for resources:")


def test_stats_sum_the_amphorae_and_count_active_connections_of_serving_ones(client, lb,
                                                                            services):
    listener = create_listener(client, lb["id"])
    assert client.get(f"{LISTENERS}/{listener['id']}/stats").json() == {"stats": {
        "bytes_in": 0, "bytes_out": 0, "active_connections": 0, "total_connections": 0,
        "request_errors": 0}}
    with services.db.write() as session:
        serving = Amphora(status="ALLOCATED", load_balancer_id=lb["id"])
        retired = Amphora(status="DELETED", load_balancer_id=lb["id"])
        session.add_all([serving, retired])
        session.flush()
        for amphora, active in ((serving, 3), (retired, 5)):
            session.add(ListenerStatistics(
                listener_id=listener["id"], amphora_id=amphora.id, bytes_in=100, bytes_out=200,
                active_connections=active, total_connections=10, request_errors=1))
    assert client.get(f"{LISTENERS}/{listener['id']}/stats").json() == {"stats": {
        "bytes_in": 200, "bytes_out": 400, "active_connections": 3, "total_connections": 20,
        "request_errors": 2}}


def test_list_filters_sorts_pages_and_selects_fields(client, lb):
    other = create_lb(client)
    made = [create_listener(client, lb["id"], protocol_port=port, name=f"l{port}",
                            tags=["even"] if port % 2 == 0 else ["odd"])
            for port in (80, 81, 82)]
    create_listener(client, other["id"], protocol_port=80)

    def names(query):
        response = client.get(f"{LISTENERS}?{query}")
        assert response.status_code == 200, response.text
        return [item["name"] for item in response.json()["listeners"]]

    assert names(f"loadbalancer_id={lb['id']}&sort=protocol_port:desc") == ["l82", "l81", "l80"]
    assert names("protocol_port=81") == ["l81"]
    assert names(f"loadbalancer_id={lb['id']}&tags=even&sort=name") == ["l80", "l82"]
    assert names(f"loadbalancer_id={lb['id']}&not-tags=even") == ["l81"]
    page = client.get(f"{LISTENERS}?loadbalancer_id={lb['id']}&sort=protocol_port&limit=2").json()
    assert [item["id"] for item in page["listeners"]] == [made[0]["id"], made[1]["id"]]
    assert [link["rel"] for link in page["listeners_links"]] == ["next"]
    rest = client.get(page["listeners_links"][0]["href"]).json()
    assert [item["id"] for item in rest["listeners"]] == [made[2]["id"]]
    fields = client.get(f"{LISTENERS}?fields=id&fields=protocol_port&protocol_port=82").json()
    assert fields["listeners"] == [{"id": made[2]["id"], "protocol_port": 82}]
    shown = client.get(f"{LISTENERS}/{made[0]['id']}?fields=name").json()
    assert shown == {"listener": {"name": "l80"}}
    assert fault(client.get(f"{LISTENERS}?bogus=1"), 400) == \
        "One or more arguments are either duplicate or invalid."
