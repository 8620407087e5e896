"""The Nedlia services are packages importable from services/ (the ECS tasks' working
directory) and the functions from services/functions (their Lambda code folder)."""

import sys
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[3] / "services"
for folder in (SERVICES, SERVICES / "functions"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
