"""One line naming the machine a number was measured on (tables, reports, model cards)."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path


def machine_description() -> str:
    """E.g. ``"2-core CPU (AMD EPYC 7B13), 24 GiB, no GPU, load 0.3"``."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    parts = [f"{os.cpu_count()}-core CPU ({cpu})"]
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        parts.append(f"{pages * size / 2**30:.0f} GiB")
    except (ValueError, OSError, AttributeError):
        pass
    try:
        import torch

        parts.append(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")
    except ImportError:
        pass
    with contextlib.suppress(OSError):
        parts.append(f"load {os.getloadavg()[0]:.1f}")
    return ", ".join(parts)
