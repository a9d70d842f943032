"""The OCI image that `make image` builds, run the way this machine can run it.

`podman run` cannot start a container here (crun cannot set the rlimits, and with
default ulimits off it refuses the hybrid cgroup setup), so a command of the image runs
in a chroot of the committed image's own file tree (`buildah mount` of a container made
from it, not the tree it was built from), with the image's configured entrypoint,
environment, user and working directory; the root mounted read-only in a mount namespace
of its own, with /proc, /dev and a tmpfs on /tmp, as a container runtime would give it.
The network is the machine's, so 127.0.0.1 reaches the test infrastructure.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ordersaga" / "image"
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}{done.stderr}"
    return done.stdout.strip()


def build_from_clone(clone: Path, name: str) -> tuple[str, float]:
    """Build image ``name`` with infra/image.sh of a fresh clone, sharing this checkout's
    cache of the Debian root filesystem and the wheels; the build's output and seconds."""
    started = time.monotonic()
    done = subprocess.run(
        ["bash", "infra/image.sh"],
        cwd=clone,
        env={
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "IMAGE_NAME": name,
            "ORDERSAGA_IMAGE_CACHE": str(CACHE),
            "PYTHON": "python3",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"make image failed:\n{done.stdout}{done.stderr}"
    return done.stderr, time.monotonic() - started


def build_from_a_fresh_clone(name: str) -> tuple[str, float]:
    """Image ``name`` built by `make image`'s script from a clone of the committed tree;
    the build's output and seconds."""
    with tempfile.TemporaryDirectory(prefix="ordersaga-image-") as scratch:
        clone = Path(scratch) / "ordersaga"
        run("git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone))
        return build_from_clone(clone, name)


def main() -> None:
    """``python -m tests.realstack.image NAME FILE``: build the image NAME as the tests'
    fixture does and write its name, the build's output and seconds to FILE as JSON.
    infra/test-suite.sh runs it beside its first pytest run (ORDERSAGA_TEST_IMAGE_BUILT)."""
    name, into = sys.argv[1:]
    output, seconds = build_from_a_fresh_clone(name)
    Path(into).write_text(json.dumps({"name": name, "output": output, "seconds": seconds}))


@dataclass
class MountedImage:
    """A container of ``image`` whose file tree is mounted; commands run in it."""

    image: str
    container: str = ""
    tree: Path = Path()
    config: dict[str, Any] = field(default_factory=dict)

    def __enter__(self) -> "MountedImage":
        self.container = run("buildah", "from", "--pull-never", self.image)
        self.tree = Path(run("buildah", "mount", self.container))
        inspected = json.loads(run("buildah", "inspect", "--type", "image", self.image))
        self.config = inspected["OCIv1"]["config"]
        return self

    def __exit__(self, *_: object) -> None:
        subprocess.run(["buildah", "rm", self.container], capture_output=True, check=False)

    @property
    def environment(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.config.get("Env", []))

    def command(
        self,
        args: list[str],
        env: dict[str, str],
        entrypoint: list[str] | None = None,
        files: dict[str, Path] | None = None,
    ) -> list[str]:
        """The command line that runs the image's entrypoint (or ``entrypoint``) with
        ``args`` as its user, on its read-only root, with the image's environment and
        then ``env``; ``files`` (name: host file) are copied into its ``/tmp`` first, as
        a container would have them mounted (a CA certificate)."""
        tree = shlex.quote(str(self.tree))
        user = self.config["User"]
        assert ":" in user, f"the image's user {user!r} has no group"
        variables = [f"{k}={v}" for k, v in {**self.environment, **env}.items()]
        inside = [*(entrypoint or self.config["Entrypoint"]), *args]
        script = " && ".join(
            [
                f"mount --bind {tree} {tree}",
                f"mount -o remount,bind,ro {tree}",
                f"mount -t proc proc {tree}/proc",
                f"mount --rbind /dev {tree}/dev",
                f"mount -t tmpfs -o mode=1777,size=64m tmpfs {tree}/tmp",
                *(
                    f"install -m 644 {shlex.quote(str(path))} {tree}/tmp/{shlex.quote(name)}"
                    for name, path in (files or {}).items()
                ),
                "cd /",
                "exec env -i "
                + " ".join(shlex.quote(v) for v in variables)
                + f" {CHROOT} --userspec={shlex.quote(user)} {tree} /bin/sh -c "
                + shlex.quote(
                    f"cd {shlex.quote(self.config['WorkingDir'])} && exec "
                    + " ".join(shlex.quote(a) for a in inside)
                ),
            ]
        )
        return ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script]


if __name__ == "__main__":
    main()
