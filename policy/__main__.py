"""The tasks policy pack: `pulumi preview --policy-pack policy` (from the repository root).

The rules live in `policy/rules.py`, next to this file; they read AWS's limits and the tagging
rules from `infra/`, so the repository root goes on the import path.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import PolicyPack

from policy.rules import POLICIES

PolicyPack(name="tasks", policies=POLICIES)
