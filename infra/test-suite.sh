#!/usr/bin/env bash
# The whole test suite, as `make test` runs it inside infra/with-infra.sh, in two pytest runs:
#
# 1. every directory but the three below on two workers (pytest-xdist, TEST_WORKERS to
#    change it): the in-process tests, the persistence tests on all three databases (each
#    worker creates scratch databases of its own) and the deployment files. Each module
#    goes to one worker whole (--dist loadscope), so a module's shared set-up (the
#    fault-injection seeds, a Prometheus, a rendered chart) runs once.
# 2. then, one test at a time, the tests that want the machine otherwise quiet: the real
#    stack (tests/realstack, the three-node cluster included), the broker contract on Kafka
#    (tests/contract) and the benchmark (tests/bench).
#
# The three-node cluster kafka3 takes a minute or more to start: when it is down, it starts
# beside the first run (its output in a log shown if it fails), and
# tests/realstack/test_cluster.py stops it after its tests (KAFKA3_STARTED_FOR_TESTS), as
# it stops a cluster it started itself; whatever is left of it is stopped at the end.
#
# The test image of tests/realstack/test_image.py is built beside the first run too (a
# clone, pip, a root filesystem unpacked, buildah: 35 s, mostly waiting) and handed to that
# module (ORDERSAGA_TEST_IMAGE_BUILT), which builds it itself if it failed here; it is
# removed at the end.
#
# The second run happens even when the first fails; the exit status is the first failing
# run's. Arguments after PYTEST go to both runs.
#
#   infra/test-suite.sh PYTEST [ARGS]...
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pytest=$1
shift
quiet=(tests/realstack tests/contract tests/bench)

at_exit=()
trap 'for step in "${at_exit[@]}"; do eval "$step"; done' EXIT

cluster_start=
if ! bash "$here/infra.sh" status kafka3 >/dev/null 2>&1; then
    cluster_log=$(mktemp -t ordersaga-kafka3-XXXXXX.log)
    bash "$here/infra.sh" up kafka3 >"$cluster_log" 2>&1 &
    cluster_start=$!
    export KAFKA3_STARTED_FOR_TESTS=1
    at_exit+=('bash "$here/infra.sh" down kafka3 >/dev/null 2>&1; rm -f "$cluster_log"')
fi

image_build=
if [[ -z ${ORDERSAGA_TEST_IMAGE:-} ]]; then
    image_name="localhost/ordersaga-test:$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
    image_record=$(mktemp -t ordersaga-test-image-XXXXXX.json)
    image_log=$(mktemp -t ordersaga-test-image-XXXXXX.log)
    "$(dirname "$pytest")/python" -m tests.realstack.image "$image_name" "$image_record" \
        >"$image_log" 2>&1 &
    image_build=$!
    export ORDERSAGA_TEST_IMAGE_BUILT=$image_record
    at_exit+=('buildah rmi --force "$image_name" >/dev/null 2>&1; rm -f "$image_record" "$image_log"')
fi

"$pytest" "$@" -n "${TEST_WORKERS:-2}" --dist loadscope "${quiet[@]/#/--ignore=}"
parallel=$?

if [[ -n $cluster_start ]] && ! wait "$cluster_start"; then
    echo "infra: kafka3 did not start beside the first run (the cluster tests try again):" >&2
    tail -n 40 "$cluster_log" >&2
fi
if [[ -n $image_build ]] && ! wait "$image_build"; then
    : >"$image_record"
    echo "image: the test image did not build beside the first run (test_image.py tries again):" >&2
    tail -n 40 "$image_log" >&2
fi
"$pytest" "$@" "${quiet[@]}"
serial=$?
exit $((parallel ? parallel : serial))
