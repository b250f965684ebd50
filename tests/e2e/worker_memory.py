"""The memory of a gateway's worker process, read from Linux /proc."""

from __future__ import annotations

from tests.e2e.gateway_process import GatewayProcess


def worker_pid(gateway: GatewayProcess) -> int:
    """The one worker of a single-worker gateway (granian forks it from the main process)."""
    assert gateway.proc is not None
    with open(f"/proc/{gateway.proc.pid}/task/{gateway.proc.pid}/children") as children:
        pids = [int(pid) for pid in children.read().split()]
    assert len(pids) == 1, pids
    return pids[0]


def high_water_mib(pid: int) -> float:
    """VmHWM: the most resident memory the process ever had, in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for pid {pid}")
