"""One connection of aardwolf 0.2.16 (PyPI) to an RDP host, over TLS or Standard RDP Security,
through licensing and connection finalization, for rdpele's interop tests
(cli/tests/it/interop_aardwolf.rs).

Usage: connect.py HOST:PORT USER PASSWORD [--security tls|rdp]

--security tls (the default) leaves aardwolf's RDPIOSettings.supported_protocols at None, so it
offers PROTOCOL_RDP | PROTOCOL_SSL in the X.224 Connection Request (its choice for rdp+plain
credentials) and goes TLS; --security rdp sets it to SUPP_PROTOCOLS.RDP, requesting PROTOCOL_RDP
(0) only: Standard RDP Security (MS-RDPBCGR 5.3: Security Exchange PDU, RC4 and MACs, no TLS).

Prints one JSON line, {"connected": true} once aardwolf reports the connection sequence done,
or {"connected": false, "error": "..."}; exits 0 or 1 accordingly. aardwolf keeps no CAL: each
connection sends a New License Request with the same HWID, as a device that lost its store.
"""

import asyncio
import json
import sys

from aardwolf.commons.factory import RDPConnectionFactory
from aardwolf.commons.iosettings import RDPIOSettings
from aardwolf.protocol.x224.constants import SUPP_PROTOCOLS

SECURITY = {
    "tls": None,  # aardwolf decides: RDP | SSL, as before --security existed
    "rdp": SUPP_PROTOCOLS.RDP,
}


async def connect(address: str, user: str, password: str, security: str = "tls") -> dict:
    host, port = address.rsplit(":", 1)
    settings = RDPIOSettings()
    settings.supported_protocols = SECURITY[security]
    factory = RDPConnectionFactory.from_url(
        f"rdp+plain://{user}:{password}@{host}:{port}", settings
    )
    connection = factory.create_connection_newtarget(host, settings)
    _, error = await asyncio.wait_for(connection.connect(), timeout=30)
    if error is not None:
        return {"connected": False, "error": repr(error)}
    await connection.terminate()
    return {"connected": True}


def parse_args(argv: list) -> tuple:
    """HOST:PORT USER PASSWORD [--security tls|rdp], or None when malformed."""
    if len(argv) == 3:
        return (*argv, "tls")
    if len(argv) == 5 and argv[3] == "--security" and argv[4] in SECURITY:
        return tuple(argv)[:3] + (argv[4],)
    if len(argv) == 4 and argv[3].startswith("--security=") and argv[3][11:] in SECURITY:
        return tuple(argv)[:3] + (argv[3][11:],)
    return None


def main() -> int:
    args = parse_args(sys.argv[1:])
    if args is None:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        result = asyncio.run(connect(*args))
    except Exception as error:  # reported, not raised: the test reads the JSON line
        result = {"connected": False, "error": repr(error)}
    print(json.dumps(result))
    return 0 if result["connected"] else 1


if __name__ == "__main__":
    sys.exit(main())
