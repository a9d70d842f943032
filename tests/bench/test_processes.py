"""Children started by a tool die with it, even when it is killed with SIGKILL."""

import os
import signal
import subprocess
import sys

from tests.support import until_sync

ORPHANING_PARENT = """
import asyncio, sys
from pathlib import Path
from ordersaga.runtime.processes import ChildProcess

async def main():
    child = ChildProcess("sleeper", ["sleep", "30"], Path(sys.argv[1]))
    await child.start()
    print(child.pid, flush=True)
    await asyncio.sleep(30)

asyncio.run(main())
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too: it only waits for its (new) parent to reap it
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_child_is_ended_when_the_tool_is_killed(tmp_path: object) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", ORPHANING_PARENT, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        until_sync(lambda: not alive(child), 5, f"the end of child {child}")
    finally:
        parent.kill()
