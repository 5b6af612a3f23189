"""The provisioning steps, in plan order. Each knows ERPNext and nothing else."""

from __future__ import annotations

from provisioner.steps.base import Step
from provisioner.steps.check_engine import CheckEngine
from provisioner.steps.configure_settings import ConfigureSettings
from provisioner.steps.create_company import CreateCompany
from provisioner.steps.create_demo_items import CreateDemoItems
from provisioner.steps.create_pos_profile import CreatePosProfile
from provisioner.steps.create_walk_in_customer import CreateWalkInCustomer
from provisioner.steps.create_warehouses import CreateWarehouses
from provisioner.steps.import_chart_of_accounts import ImportChartOfAccounts
from provisioner.steps.open_pos_session import OpenPosSession

STEPS: tuple[Step, ...] = (
    CheckEngine(),
    CreateCompany(),
    ImportChartOfAccounts(),
    CreateWarehouses(),
    ConfigureSettings(),
    CreateDemoItems(),
    CreateWalkInCustomer(),
    CreatePosProfile(),
    OpenPosSession(),
)
STEP_NAMES: tuple[str, ...] = tuple(step.name for step in STEPS)
BY_NAME: dict[str, Step] = {step.name: step for step in STEPS}
