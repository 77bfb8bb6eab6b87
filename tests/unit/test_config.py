"""The INI file uses upstream's section and option names and defaults."""
from __future__ import annotations

import pytest

from lbaas import config, service


def test_defaults_are_upstreams():
    settings = config.load(environ={})
    assert settings.api_settings.bind_port == 9876
    assert settings.api_settings.pagination_max_limit == "1000"
    assert settings.haproxy_amphora.timeout_client_data == 50000
    assert settings.networking.reserved_ips == ["169.254.169.254"]
    assert settings.quotas.default_load_balancer_quota == -1


def test_octavia_conf_is_read_and_unknown_options_ignored(tmp_path):
    conf = tmp_path / "octavia.conf"
    conf.write_text(
        "[DEFAULT]\ntransport_url = rabbit://x\n"
        "[api_settings]\nbind_port = 19876\nenabled_provider_drivers = amphora:The amphora\n"
        "[networking]\nreserved_ips = 10.0.0.1, 10.0.0.2\n"
        "[keystone_authtoken]\nwww_authenticate_uri = http://k\n")
    settings = config.load(conf, environ={})
    assert settings.api_settings.bind_port == 19876
    assert settings.api_settings.enabled_provider_drivers == {"amphora": "The amphora"}
    assert settings.networking.reserved_ips == ["10.0.0.1", "10.0.0.2"]


def test_environment_overrides_the_file(tmp_path):
    settings = config.load(environ={"LBAAS__api_settings__bind_port": "1234"})
    assert settings.api_settings.bind_port == 1234


def test_bad_value_names_section_and_option(tmp_path):
    conf = tmp_path / "lbaas.conf"
    conf.write_text("[api_settings]\nbind_port = many\n")
    with pytest.raises(config.ConfigError, match=r"api_settings\] bind_port"):
        config.load(conf, environ={})


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(config.ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.conf", environ={})


def test_show_round_trips(tmp_path):
    text = config.load(environ={}).to_ini()
    conf = tmp_path / "shown.conf"
    conf.write_text(text)
    assert config.load(conf, environ={}).model_dump() == config.load(environ={}).model_dump()


def test_unknown_sections_and_options_are_warned_with_a_suggestion(tmp_path):
    conf = tmp_path / "lbaas.conf"
    conf.write_text("[api_setings]\nbind_port = 1\n"
                    "[api_settings]\nbind_prot = 1\n"
                    "[house_keeping]\n"
                    "[controller_worker]\nloadbalancer_topology = SINGLE\n"
                    "[health_manager]\nheartbeat_key = k\nspare_amphora_pool_size = 1\n")
    settings = config.load(conf, environ={"LBAAS__api_settings__workerz": "2",
                                          "LBAAS__nosuch__thing": "1"})
    text = "\n".join(settings.warnings)
    assert "[api_setings] is not an lbaas section; ignored (did you mean api_settings?)" in text
    assert "[api_settings] bind_prot is not an lbaas option; ignored (did you mean bind_port?)" \
        in text
    assert "[health_manager] spare_amphora_pool_size is not an lbaas option; ignored " \
           "(it belongs in [house_keeping])" in text
    assert "LBAAS__api_settings__workerz is not an lbaas option" in text
    assert "LBAAS__nosuch__thing is not LBAAS__<section>__<option>" in text
    # Options that are known give no warning.
    assert "loadbalancer_topology" not in text and "heartbeat_key" not in text


@pytest.mark.parametrize("value, message", [
    ("172.29.232.1/22", "172.29.232.1/22 has host bits set; did you mean 172.29.232.0/22?"),
    ("172.29.232.1", "write 172.29.232.1/32"),
    ("nonsense", "nonsense"),
])
def test_a_bad_cidr_is_refused_with_what_to_write(tmp_path, value, message):
    conf = tmp_path / "lbaas.conf"
    conf.write_text(f"[networking]\nlb_network_cidr = {value}\n")
    with pytest.raises(config.ConfigError) as caught:
        config.load(conf, environ={})
    assert str(caught.value).startswith(
        f"invalid configuration: {conf}: [networking] lb_network_cidr: ")
    assert message in str(caught.value)
    assert "Value error" not in str(caught.value)


def test_an_error_set_by_the_environment_names_the_variable():
    with pytest.raises(config.ConfigError) as caught:
        config.load(environ={"LBAAS__api_settings__bind_port": "70000"})
    assert str(caught.value).startswith(
        "invalid configuration: LBAAS__api_settings__bind_port: ")
    assert "65535" in str(caught.value)


def test_unmasked_show_round_trips_secrets(tmp_path):
    conf = tmp_path / "lbaas.conf"
    conf.write_text("[health_manager]\nheartbeat_key = s3cret\n")
    settings = config.load(conf, environ={})
    assert "s3cret" not in settings.to_ini()
    shown = tmp_path / "shown.conf"
    shown.write_text(settings.to_ini(unmasked=True))
    assert config.load(shown, environ={}).health_manager.heartbeat_key.get_secret_value() == "s3cret"


def test_log_targets_are_address_and_port():
    settings = config.load(environ={
        "LBAAS__amphora_agent__tenant_log_targets": "192.0.2.1:514, [2001:db8::1]:10514"})
    assert settings.amphora_agent.tenant_log_targets == ["192.0.2.1:514", "[2001:db8::1]:10514"]
    with pytest.raises(config.ConfigError, match="'syslog.example' is not address:port"):
        config.load(environ={"LBAAS__amphora_agent__admin_log_targets": "syslog.example"})


@pytest.mark.parametrize("flavors, reason", [
    ("tiny:16:0.001", "0.01 to 1024 vcpus"),
    ("huge:99999999999999999999:1", "16 MiB to 4 TiB"),
    ("a:100:1,a:200:2", "flavor 'a' is defined twice"),
    ("x:100:1:extra", "write name:ram_mb:vcpus"),
])
def test_compute_flavors_the_kernel_would_refuse_are_refused_at_load(flavors, reason):
    with pytest.raises(config.ConfigError, match=reason):
        config.load(environ={"LBAAS__compute__flavors": flavors})


def test_an_amp_flavor_id_naming_no_flavor_stops_the_service_at_start(tmp_path):
    settings = config.load(environ={"LBAAS__DEFAULT__state_path": str(tmp_path),
                                    "LBAAS__controller_worker__amp_flavor_id": "m1.small"})
    with pytest.raises(config.ConfigError, match=r"amp_flavor_id = m1.small names no flavor "
                                                 r"of \[compute\] flavors \(amphora:1024:1\)"):
        service.check(settings)
