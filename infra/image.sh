#!/usr/bin/env bash
# Build the OCI image ordersaga:<version> from Debian's packages, without a base image:
#
#   1. the wheels: the project's (built every time) and its dependencies' (cached under
#      ~/.cache/ordersaga/image/wheels-<key>/, keyed by pyproject.toml and the Python version);
#   2. a minimal Debian bookworm root filesystem with python3 (mmdebstrap; cached as
#      ~/.cache/ordersaga/image/rootfs-<key>.tar, keyed by the suite, mirror and package list);
#   3. the wheels installed offline into a virtual environment /opt/ordersaga made by the
#      root filesystem's own Python, and the user ordersaga (uid and gid 10001);
#   4. committed with buildah from scratch: entrypoint /opt/ordersaga/bin/ordersaga,
#      user 10001, no HEALTHCHECK (Kubernetes probes /healthz and /readyz instead).
#
#   infra/image.sh                  build; prints the image's name and size
#   IMAGE_ARCHIVE=path.tar infra/image.sh   also write it as an oci-archive
#
# Needs root; installs mmdebstrap and buildah when missing. ORDERSAGA_IMAGE_CACHE moves the cache directory
# (outside the checkout by default, like Maven's ~/.m2, so every clone on the machine shares it). The image reads nothing from its root at
# run time that it writes: it is meant to run with a read-only root filesystem.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${ORDERSAGA_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ordersaga/image}"
python="${PYTHON:-python3}"
suite=bookworm
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages=python3,python3-venv,ca-certificates
uid=10001

say() { echo "image: $*" >&2; }
fail() { echo "image: $*" >&2; exit 2; }

[[ $(id -u) == 0 ]] || fail "run as root (mmdebstrap and buildah need it)"
missing=()
for tool in mmdebstrap buildah; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
    say "installing ${missing[*]} (Debian packages)"
    { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"; } >&2 \
        || fail "could not install ${missing[*]}: apt-get install ${missing[*]}"
fi
# The wheels are built by this Python and installed by bookworm's, which is 3.11.
pyver="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
[[ $pyver == 3.11 ]] || fail "$python is Python $pyver; bookworm's is 3.11, the wheels must match"

version="$(cd "$root" && "$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
image="${IMAGE_NAME:-ordersaga:$version}"
mkdir -p "$cache"
started=$SECONDS

# 1. Wheels. The dependencies' are kept per pyproject.toml; the project's is made anew.
deps_key="$( (cat "$root/pyproject.toml"; echo "$pyver") | sha256sum | cut -c1-16)"
deps="$cache/wheels-$deps_key"
work="$(mktemp -d "$cache/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$work/project" "$root"
if [[ ! -d $deps ]]; then
    say "downloading and building the dependencies' wheels into $deps"
    "$python" -m pip wheel --quiet --wheel-dir "$work/deps" "$root"
    rm -f "$work"/deps/ordersaga-*.whl
    mv "$work/deps" "$deps"
fi

# 2. The Debian root filesystem, as a tarball.
rootfs_key="$(echo "$suite $mirror $packages minbase" | sha256sum | cut -c1-16)"
rootfs="$cache/rootfs-$rootfs_key.tar"
if [[ ! -f $rootfs ]]; then
    say "building a Debian $suite root filesystem with $packages (mmdebstrap: one to a few minutes, once)"
    mmdebstrap --quiet --mode=root --variant=minbase --include="$packages" \
        "$suite" "$work/rootfs.tar" "$mirror"
    mv "$work/rootfs.tar" "$rootfs"
fi

# 3. The virtual environment and the user, inside the image's own file tree.
container="$(buildah from scratch)"
trap 'buildah rm "$container" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
tree="$(buildah mount "$container")"
tar -C "$tree" -xf "$rootfs"
mkdir -p "$tree/tmp/wheels"
cp "$deps"/*.whl "$work"/project/*.whl "$tree/tmp/wheels/"
chroot "$tree" /usr/bin/python3 -m venv /opt/ordersaga
chroot "$tree" /opt/ordersaga/bin/pip install --quiet --no-index --no-cache-dir \
    --disable-pip-version-check --find-links /tmp/wheels ordersaga
chroot "$tree" /opt/ordersaga/bin/pip uninstall --quiet --yes pip
# What no process of the image reads: documentation, manuals, translations, apt's lists.
rm -rf "$tree/tmp/wheels" "$tree"/usr/share/{doc,man,info,locale}/* \
    "$tree"/var/cache/apt/* "$tree"/var/lib/apt/lists/* "$tree"/var/log/*
chroot "$tree" groupadd --gid "$uid" ordersaga
chroot "$tree" useradd --uid "$uid" --gid "$uid" --home-dir /home/ordersaga --create-home \
    --shell /usr/sbin/nologin ordersaga
buildah unmount "$container" >/dev/null

# 4. The image.
revision="$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)"
buildah config \
    --entrypoint '["/opt/ordersaga/bin/ordersaga"]' --cmd '["--help"]' \
    --user "$uid:$uid" --workingdir /home/ordersaga \
    --env PATH=/opt/ordersaga/bin:/usr/local/bin:/usr/bin:/bin \
    --env HOME=/home/ordersaga --env PYTHONDONTWRITEBYTECODE=1 --env PYTHONUNBUFFERED=1 \
    --env MPLCONFIGDIR=/tmp/matplotlib \
    --env ORDERSAGA_API_HOST=0.0.0.0 \
    --port 8091/tcp --port 8092/tcp --port 9100/tcp \
    --label org.opencontainers.image.title=ordersaga \
    --label org.opencontainers.image.description="The place-order saga over Kafka: order, orchestrator, stock and payment" \
    --label org.opencontainers.image.version="$version" \
    --label org.opencontainers.image.revision="$revision" \
    --label org.opencontainers.image.created="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --label org.opencontainers.image.base.name="debian:$suite (mmdebstrap minbase)" \
    "$container"
buildah commit --quiet --rm "$container" "$image" >/dev/null
trap 'rm -rf "$work"' EXIT

if [[ -n ${IMAGE_ARCHIVE:-} ]]; then
    rm -f "$IMAGE_ARCHIVE"
    buildah push --quiet "$image" "oci-archive:$IMAGE_ARCHIVE:$image"
    say "wrote $IMAGE_ARCHIVE"
fi
size="$(buildah images --format '{{.Size}}' "$image" | head -1)"
say "built $image ($size) in $((SECONDS - started)) s"
echo "$image"
