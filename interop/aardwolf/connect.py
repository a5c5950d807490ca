"""One connection of aardwolf 0.2.16 (PyPI) to an RDP host over TLS, through licensing and
connection finalization, for rdpele's interop tests (cli/tests/it/interop_aardwolf.rs).

Usage: connect.py HOST:PORT USER PASSWORD

Prints one JSON line, {"connected": true} once aardwolf reports the connection sequence done,
or {"connected": false, "error": "..."}; exits 0 or 1 accordingly. aardwolf keeps no CAL: each
connection sends a New License Request with the same HWID, as a device that lost its store.
"""

import asyncio
import json
import sys

from aardwolf.commons.factory import RDPConnectionFactory
from aardwolf.commons.iosettings import RDPIOSettings


async def connect(address: str, user: str, password: str) -> dict:
    host, port = address.rsplit(":", 1)
    settings = RDPIOSettings()
    factory = RDPConnectionFactory.from_url(
        f"rdp+plain://{user}:{password}@{host}:{port}", settings
    )
    connection = factory.create_connection_newtarget(host, settings)
    _, error = await asyncio.wait_for(connection.connect(), timeout=30)
    if error is not None:
        return {"connected": False, "error": repr(error)}
    await connection.terminate()
    return {"connected": True}


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        result = asyncio.run(connect(*sys.argv[1:4]))
    except Exception as error:  # reported, not raised: the test reads the JSON line
        result = {"connected": False, "error": repr(error)}
    print(json.dumps(result))
    return 0 if result["connected"] else 1


if __name__ == "__main__":
    sys.exit(main())
