"""API errors with upstream's status codes and messages, rendered as WSME fault bodies."""
from __future__ import annotations

from typing import Any


class APIError(Exception):
    """An error the API answers with ``{"faultcode", "faultstring", "debuginfo"}``."""

    code = 500
    msg = "Something unknown went wrong"

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        text = message if message is not None else self.msg % kwargs
        # A value echoed from the request may not be valid Unicode (a lone surrogate):
        # the fault body must still encode.
        self.message = text.encode("utf-8", "backslashreplace").decode("utf-8")
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {
            "faultcode": "Client" if self.code < 500 else "Server",
            "faultstring": self.message,
            "debuginfo": None,
        }


class NotFound(APIError):
    code = 404
    msg = "%(resource)s %(id)s not found."


class InvalidInput(APIError):
    """WSME's wording for a field that failed type or range validation."""

    code = 400
    msg = "Invalid input for field/attribute %(field)s. Value: '%(value)s'. %(reason)s"


class InvalidOption(APIError):
    code = 400
    msg = "%(value)s is not a valid option for %(option)s"


class ValidationException(APIError):
    code = 400
    msg = "Validation failure: %(detail)s"


class VIPValidationException(APIError):
    code = 400
    msg = "Validation failure: VIP must contain one of: %(objects)s."


class VIPUnavailable(APIError):
    """The network cannot give the VIP asked for (as Neutron's 409s, which upstream passes on)."""

    code = 409
    msg = "%(detail)s"


class InvalidSubresource(APIError):
    code = 400
    msg = "%(resource)s %(id)s not found."


class InvalidFilterArgument(APIError):
    code = 400
    msg = "One or more arguments are either duplicate or invalid."


class InvalidSortKey(APIError):
    code = 400
    msg = "Supplied sort key '%(key)s' is not valid."


class InvalidSortDirection(APIError):
    code = 400
    msg = "Supplied sort direction '%(key)s' is not valid."


class InvalidMarker(APIError):
    code = 400
    msg = "Supplied pagination marker '%(key)s' is not valid."


class InvalidLimit(APIError):
    code = 400
    msg = "Supplied pagination limit '%(key)s' is not valid."


class DisabledOption(APIError):
    code = 400
    msg = "The selected %(option)s is not allowed in this deployment: %(value)s"


class ProviderNotEnabled(APIError):
    code = 400
    msg = "Provider '%(prov)s' is not enabled."


class MissingProjectID(APIError):
    code = 400
    msg = "Missing project ID in request where one is required."


class ListenerNoChildren(APIError):
    code = 400
    msg = "Protocol %(protocol)s listeners cannot have child objects."


class MemberSRIOVDisabled(APIError):
    code = 400
    msg = "The load balancer flavor does not allow SR-IOV member ports."


class ProviderFlavorMismatchError(APIError):
    code = 400
    msg = "Flavor '%(flav)s' is not compatible with provider '%(prov)s'"


class RecordAlreadyExists(APIError):
    code = 409
    msg = "A %(field)s of %(name)s already exists."


class InvalidL7PolicyAction(APIError):
    code = 400
    msg = "Invalid L7 Policy action specified: %(action)s"


class InvalidL7PolicyArgs(APIError):
    code = 400
    msg = "Invalid L7 Policy arguments: %(msg)s"


class L7RuleValidation(APIError):
    code = 400
    msg = "Error parsing L7Rule: %(error)s"


class PolicyForbidden(APIError):
    code = 403
    msg = "Policy does not allow this request to be performed."


class MetricsNeedAToken(APIError):
    """Ours: /metrics from an address outside [api_settings] metrics_allowed_cidrs."""

    code = 401
    msg = ("Authentication required: send a token with X-Auth-Token, or scrape from an "
           "address in [api_settings] metrics_allowed_cidrs.")


class QuotaException(APIError):
    code = 403
    msg = "Quota has been met for resources: %(resource)s"


class NotAcceptable(APIError):
    code = 406
    msg = "Only application/json is supported."


class ImmutableObject(APIError):
    code = 409
    msg = "%(resource)s %(id)s is immutable and cannot be updated."


class DuplicateListenerEntry(APIError):
    code = 409
    msg = "Another Listener on this Load Balancer is already using protocol %(protocol)s and protocol_port %(port)d"


class DuplicateMemberEntry(APIError):
    code = 409
    msg = "Another member on this pool is already using ip %(ip_address)s on protocol_port %(port)d"


class DuplicateHealthMonitor(APIError):
    code = 409
    msg = "This pool already has a health monitor"


class DuplicatePoolEntry(APIError):
    code = 409
    msg = "This listener already has a default pool"


class PoolInUseByL7Policy(APIError):
    code = 409
    msg = "Pool %(id)s is in use by L7 policy %(l7policy_id)s"


class TooManyL7RulesOnL7Policy(APIError):
    code = 409
    msg = "Too many rules on L7 policy %(id)s"


class ObjectInUse(APIError):
    code = 409
    msg = "%(object)s %(id)s is in use and cannot be modified."


class ProviderUnsupportedOption(APIError):
    code = 501
    msg = "Provider '%(prov)s' does not support a requested option: %(user_msg)s"


class ProviderNotFound(APIError):
    code = 501
    msg = "Provider '%(prov)s' was not found."


class CertificateRetrieval(APIError):
    code = 400
    msg = "Could not retrieve certificate: %(ref)s"
