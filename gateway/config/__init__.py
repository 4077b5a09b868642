"""The gateway's configuration: a commented TOML file, read into frozen dataclasses and validated.

``impp-gateway init`` writes the file from :data:`~gateway.config.template.TEMPLATE`;
:func:`load_configuration` reads it on every start (and for ``impp-gateway config check``) and
raises :class:`ConfigError` listing every :class:`Problem` found, each naming its key, what is
wrong and the fix. docs/operations.md describes every key.
"""

from __future__ import annotations

from gateway.config.checks import check_environment, port_problem
from gateway.config.errors import ConfigError, Problem
from gateway.config.identity import (
    GATEWAY_KID,
    IdentityError,
    load_gateway_identity,
    new_gateway_identity,
    write_gateway_identity,
)
from gateway.config.loader import (
    SECTION_KEYS,
    is_loopback_host,
    load_configuration,
    parse_configuration,
)
from gateway.config.model import (
    CONFIG_FILE_NAME,
    DEFAULT_DEVICE_PORT,
    DEFAULT_QUEUE_LENGTH,
    Configuration,
    EdhocSection,
    GatewaySection,
    LimitsSection,
    ListenAddress,
    ListenSection,
    LogLevel,
    MetricsSection,
    SigningSection,
    StoreSection,
    Trust,
    UpstreamDomain,
    UpstreamSection,
)
from gateway.config.reload import LIVE_KEYS, ReloadPlan, live_configuration, plan_reload
from gateway.config.template import TEMPLATE, render_configuration

__all__ = [
    "CONFIG_FILE_NAME",
    "DEFAULT_DEVICE_PORT",
    "DEFAULT_QUEUE_LENGTH",
    "GATEWAY_KID",
    "LIVE_KEYS",
    "SECTION_KEYS",
    "TEMPLATE",
    "ConfigError",
    "Configuration",
    "EdhocSection",
    "GatewaySection",
    "IdentityError",
    "LimitsSection",
    "ListenAddress",
    "ListenSection",
    "LogLevel",
    "MetricsSection",
    "Problem",
    "ReloadPlan",
    "SigningSection",
    "StoreSection",
    "Trust",
    "UpstreamDomain",
    "UpstreamSection",
    "check_environment",
    "is_loopback_host",
    "live_configuration",
    "load_configuration",
    "load_gateway_identity",
    "new_gateway_identity",
    "parse_configuration",
    "plan_reload",
    "port_problem",
    "render_configuration",
    "write_gateway_identity",
]
