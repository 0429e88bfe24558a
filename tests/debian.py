"""Test helper: find a system program the tests need, installing Debian's package if missing.

On a fresh machine of ours (Debian, as root) a missing program is installed from Debian's
package; anywhere else the tests that need it fail naming what to install. They are never
skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def debian_program(program: str, package: str, *, needed_by: str) -> str:
    """The path of ``program``, installing Debian's ``package`` when it is missing and we can."""
    found = shutil.which(program)
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
        if subprocess.run(install, env=env, capture_output=True, check=False).returncode:
            # A fresh machine's package lists may be empty or stale: refresh them once.
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
            subprocess.run(install, env=env, capture_output=True, check=False)
        found = shutil.which(program)
    if found is None:
        pytest.fail(
            f"{needed_by} need a real {program}: install Debian's package "
            f"(apt-get install {package}) or put {program} on PATH"
        )
    return found
