"""One line on what the machine is doing, for the status bar: the device, memory in use, the running job's
progress, and what waits in the queue.

    machine_status(ws)   # {'device': 'CPU (2 cores)', 'memory': '1.2 GiB in use (app and worker)', ...}

GPU memory is read with nvidia-smi in a child process (the app never creates a CUDA context); on a machine
without a GPU the memory is the resident memory of the app and of the running worker, from /proc.
"""

from __future__ import annotations

import os
from typing import Any

from studio.models.memory import detect_gpu, nvidia_smi
from studio.train.runner import observe
from studio.train.runs import progress
from studio.train.status import RunState
from studio.workspace import Workspace

GIB = 1024**3


def rss_bytes(pid: int | None) -> int:
    """Resident memory of a process (0 when it cannot be read)."""
    if not pid:
        return 0
    try:
        with open(f"/proc/{int(pid)}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0
    return 0


def gpu_memory_used() -> tuple[int, int] | None:
    """(used, total) bytes of the first GPU, from the driver; None without nvidia-smi."""
    out = nvidia_smi("memory.used,memory.total")
    try:
        used, total = out.strip().splitlines()[0].split(",") if out else ("", "")
        return int(float(used)) * 1024**2, int(float(total)) * 1024**2
    except (ValueError, IndexError):
        return None


def machine_status(ws: Workspace) -> dict[str, Any]:
    """device, memory, job (the running run's progress) and queue (runs waiting), as short texts."""
    gpu = detect_gpu()
    device = f"{gpu.name} ({gpu.memory_gib:.0f} GiB)" if gpu else f"CPU ({os.cpu_count() or 1} cores, no GPU)"
    running, queued = None, []
    for run_dir in ws.list_runs():
        status = observe(run_dir)
        if status.state is RunState.QUEUED and not status.dead:
            queued.append(run_dir.name)
        elif status.active and not status.dead and running is None:
            running = (run_dir.name, status)
    used = gpu_memory_used() if gpu else None
    if used is not None:
        memory = f"GPU {used[0] / GIB:.1f} of {used[1] / GIB:.0f} GiB in use"
    else:
        worker = rss_bytes(running[1].pid) if running else 0
        memory = f"{(rss_bytes(os.getpid()) + worker) / GIB:.1f} GiB in use (app{' and worker' if worker else ''})"
    job = "no run training"
    if running is not None:
        p = progress(running[1])
        job = f"{running[0]}: {p['state']}, step {p['step']} of {p['total'] or '?'}"
    return {"device": device, "memory": memory, "job": job,
            "queue": f"{len(queued)} waiting" if queued else "queue empty"}


def status_line(ws: Workspace) -> str:
    s = machine_status(ws)
    return f"{s['device']} · {s['memory']} · ▶ {s['job']} · {s['queue']}"
