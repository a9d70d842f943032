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
# The second run happens even when the first fails; the exit status is the first failing
# run's. Arguments after PYTEST go to both runs.
#
#   infra/test-suite.sh PYTEST [ARGS]...
set -uo pipefail

pytest=$1
shift
quiet=(tests/realstack tests/contract tests/bench)

"$pytest" "$@" -n "${TEST_WORKERS:-2}" --dist loadscope "${quiet[@]/#/--ignore=}"
parallel=$?
"$pytest" "$@" "${quiet[@]}"
serial=$?
exit $((parallel ? parallel : serial))
