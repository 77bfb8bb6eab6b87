"""The INI file uses upstream's section and option names and defaults."""
from __future__ import annotations

import pytest

from lbaas import config


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
