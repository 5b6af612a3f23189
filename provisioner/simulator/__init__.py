"""A faithful ERPNext v15 simulator: the engine of `make demo` and of the tests.

It answers Frappe's REST API the way a real ERPNext site did (see
docs/simulator.md and the contract it follows), with faults on demand.
"""

from provisioner.simulator.app import create_simulator
from provisioner.simulator.engine import Simulator
from provisioner.simulator.server import SimulatorServer

__all__ = ["Simulator", "SimulatorServer", "create_simulator"]
