"""python -m provisioner.simulator --host 127.0.0.1 --port 8000 --api-key K --api-secret S"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from provisioner.simulator import SimulatorServer, create_simulator
from provisioner.simulator.faults import FaultSpecError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provisioner.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--api-secret", required=True)
    parser.add_argument("--site", default="erp.localhost", help="name of the default site")
    parser.add_argument("--fresh-site", action="store_true", help="a site before its wizard")
    parser.add_argument("--latency", default="real", help="real, zero or a scale (0.1)")
    parser.add_argument("--state-file", help="keep the sites in this JSON file")
    parser.add_argument("--seed", type=int, help="seed for random faults")
    parser.add_argument(
        "--fault", action="append", default=[], help='a fault as JSON: {"kind": "error", …}'
    )
    args = parser.parse_args(argv)
    app = create_simulator(
        args.api_key,
        args.api_secret,
        site=args.site,
        fresh_site=args.fresh_site,
        latency=args.latency,
        state_file=args.state_file,
        seed=args.seed,
    )
    sim = app.extensions["erpnext_simulator"]
    try:
        for spec in args.fault:
            sim.add_fault(**json.loads(spec))
    except (ValueError, FaultSpecError) as exc:
        parser.error(f"--fault: {exc}")
    server = SimulatorServer(app, args.host, args.port)
    print(f"ERPNext simulator on {server.url} (site {args.site})", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
