"""The sans-I/O protocol core: models, the endpoint table, headers, response checking and media crypto.

Nothing here imports httpx, asyncio, IPython or pandas.
"""

from . import constants, crypto, models
from .codec import parse_response
from .endpoints import ENDPOINTS, Endpoint, RequestSpec, build_request
from .headers import ClientIdentity, random_uin, sanitize_bot_agent

__all__ = [
    "ENDPOINTS",
    "ClientIdentity",
    "Endpoint",
    "RequestSpec",
    "build_request",
    "constants",
    "crypto",
    "models",
    "parse_response",
    "random_uin",
    "sanitize_bot_agent",
]
