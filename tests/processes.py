"""Helpers for tests that interrupt a run in a subprocess and check what it left behind."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]


def interrupt_run(script: str, args: list[str], marker: bytes, find_children: Callable[[int], list[str]],
                  sig: int) -> tuple[int, list[str]]:
    """Run ``python -c script *args``; once it prints ``marker`` and ``find_children(pid)`` finds
    children, send ``sig``. Returns (exit status, the children's PIDs)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, cwd=REPO)
    children: list[str] = []
    try:
        for line in proc.stdout:
            if marker in line:
                children = find_children(proc.pid)
                if children:
                    break
        assert children, "child process not running"
        proc.send_signal(sig)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, children


def assert_gone(pids: list[str], out: Path) -> None:
    """None of ``pids`` is alive (not even a zombie) and ``out`` holds nothing."""
    time.sleep(0.5)
    for pid in pids:
        alive = subprocess.run(["ps", "-o", "stat=", "-p", pid], capture_output=True, text=True).stdout.strip()
        assert alive == "", f"child {pid} still alive ({alive})"
    leftovers = [p.name for p in out.iterdir()] if out.exists() else []
    assert leftovers == []
