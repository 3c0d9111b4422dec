"""The README's first command: `incident-bot demo` runs a whole incident and says where its store is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_demo_runs_a_whole_incident(tmp_path: Path) -> None:
    executable = str(Path(sys.executable).with_name("incident-bot"))
    result = subprocess.run([executable, "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "(channel #inc-" in out and "-checkout-errors-and-slow-pages created)" in out
    assert "#incidents · incident-bot: SEV2 incident 1 declared by @alice" in out
    assert "closed           bob: resolved → closed" in out
    assert "role_assigned    alice: alice → bob (commander)" in out
    assert "message          carol: Could it be the network between web and DB?" in out
    assert "misleading       bob: Buffer tuning and the network checks changed nothing." in out
    assert "message          bob :pushpin:: Connections: 498 of 500 in use" in out
    store = Path(out.split("The store of this run: ")[1].split()[0])
    assert store.exists()
    assert "Every step worked" in out
