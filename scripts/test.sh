#!/usr/bin/env bash
# The one test command for Veche:
#
#   ./scripts/test.sh [ARGS...]
#
# ARGS go to the test runner, e.g. `./scripts/test.sh -E 'test(/browser/)'`
# with cargo-nextest, or a test name filter with plain `cargo test`.
#
# Steps:
#  1. Install what the tests need and the machine lacks (Debian packages:
#     chromium, chromium-driver, iproute2, util-linux, janus, gcc, coturn (a real TURN server for tests/turn_credentials.rs), and
#     nftables, with which tests/cluster_failover.rs cuts a control-plane node off
#     from the others inside the test namespace, ffmpeg, whose ffprobe and
#     ffmpeg check recorded files and make the one-file export, python3
#     with venv for the S3 test server, and mold, the linker this script
#     uses when it is there).
#  2. Check formatting (cargo fmt) and lints (cargo clippy, warnings denied).
#  3. Install the test OIDC provider (npm ci in tests/oidc-provider) and the
#     test S3 server (PyPI moto[server], pinned in tests/moto/requirements.txt,
#     in the venv tests/moto/venv; in the background, from before clippy),
#     and build every test once, while the registries are reachable.
#  4. Run all Rust tests inside a fresh network namespace in which only the
#     loopback interface exists, so that no ICE candidate, and no packet at
#     all, leaves 127.0.0.1. Uses cargo-nextest if installed (config in
#     .config/nextest.toml), else `cargo test`.
#  5. Run the web client's unit tests (`node --test web/test/`) if there are
#     any and node is installed.
#  6. Type-check every web client file (`tsc --checkJs`, config in
#     web/tsconfig.json), with the TypeScript pinned in web/package-lock.json,
#     installed from the npm registry into web/node_modules by `npm ci` when
#     missing or stale. (Only web/public/ is served and embedded in the
#     binary; web/node_modules never is.)
#
# Every step runs even if an earlier check failed (the tests are skipped only
# if the build fails), then a summary is printed. The exit status is non-zero
# if any step failed.
#
# Environment:
#   VECHE_TEST_NO_NETNS=1  run the tests without the loopback-only namespace
#                          (for machines that cannot create one; WebRTC may
#                          then pick non-loopback addresses).

set -uo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
summary=()
failed=0

# run_step NAME CMD...: runs CMD, records the outcome and the time taken.
run_step() {
    local name=$1
    shift
    local t0=$SECONDS
    echo
    echo "==> $name"
    echo "    \$ $*"
    "$@"
    local rc=$?
    local took=$((SECONDS - t0))
    if [[ $rc -eq 0 ]]; then
        summary+=("ok       $name (${took}s)")
    else
        summary+=("FAILED   $name (exit $rc, ${took}s)")
        failed=1
    fi
    return $rc
}

skip_step() {
    summary+=("skipped  $1 ($2)")
}

print_summary() {
    echo
    echo "==> Summary ($((SECONDS - started))s)"
    local line
    for line in "${summary[@]}"; do
        echo "    $line"
    done
    if [[ $failed -eq 0 ]]; then
        echo "All steps passed."
    else
        echo "Some steps FAILED; see their output above."
    fi
}

as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "need root to run: $*" >&2
        return 1
    fi
}

have() {
    command -v "$1" >/dev/null 2>&1
}

# `ip` lives in /usr/sbin, which is not on every user's PATH.
find_ip() {
    local p
    for p in "$(command -v ip 2>/dev/null)" /usr/sbin/ip /sbin/ip /usr/bin/ip; do
        if [[ -n $p && -x $p ]]; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

install_missing() {
    local pkgs=()
    if ! have chromium || ! have chromedriver; then
        pkgs+=(chromium chromium-driver)
    fi
    find_ip >/dev/null || pkgs+=(iproute2)
    have unshare || pkgs+=(util-linux)
    # The load harness's comparison target (loadtest/tests/janus_smoke.rs)
    # and the C compiler it builds Janus's loopback shim with.
    have janus || pkgs+=(janus)
    have cc || pkgs+=(gcc)
    # The TURN server that tests/turn_credentials.rs allocates on with the
    # node's per-participant credentials. Like `ip`, it lives in /usr/bin
    # but its helpers may not be on PATH.
    { have turnserver && have turnutils_uclient; } || pkgs+=(coturn)
    # The stand-in TURN certificate of tests/deploy_compose.rs.
    have openssl || pkgs+=(openssl)
    # The web client's unit tests and type check.
    have node || pkgs+=(nodejs)
    have npm || pkgs+=(npm)
    # Network partitions in the cluster tests (tests/common/cluster.rs).
    # Like `ip`, nft lives in /usr/sbin.
    have nft || [[ -x /usr/sbin/nft ]] || pkgs+=(nftables)
    # Recording: ffprobe and ffmpeg check recorded files (tests/*recording*)
    # and make the one-file export.
    { have ffmpeg && have ffprobe; } || pkgs+=(ffmpeg)
    # A faster linker for the test binaries (see "Linking" below).
    have mold || pkgs+=(mold)
    # The venv that holds the test S3 server (moto_install below).
    have python3 || pkgs+=(python3)
    python3 -c 'import venv, ensurepip' 2>/dev/null || pkgs+=(python3-venv)
    if [[ ${#pkgs[@]} -eq 0 ]]; then
        echo "    chromium, chromedriver, ip, unshare, janus, cc, coturn, nft, node, npm, ffmpeg and python3 are installed"
        return 0
    fi
    echo "    installing: ${pkgs[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update &&
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${pkgs[@]}"
}

# in_loopback_netns CMD...: runs CMD in a new network namespace with only
# `lo`, brought up. Root can create one directly; other users get one inside
# a user namespace in which they are root.
in_loopback_netns() {
    if [[ ${VECHE_TEST_NO_NETNS:-0} == 1 ]]; then
        echo "    VECHE_TEST_NO_NETNS=1: running without the loopback-only namespace"
        "$@"
        return
    fi
    local ip
    ip=$(find_ip) || {
        echo "ip (iproute2) is not installed" >&2
        return 1
    }
    local ns_args=(--net)
    [[ $EUID -eq 0 ]] || ns_args=(--map-root-user --net)
    # The inner script gets `ip`'s path as $0 and the command as "$@".
    unshare "${ns_args[@]}" -- bash -c '
        "$0" link set lo up || exit 97
        exec "$@"' "$ip" "$@"
    local rc=$?
    if [[ $rc -eq 97 ]]; then
        echo "could not bring up lo in the test namespace" >&2
    elif [[ $rc -ne 0 ]] && ! unshare "${ns_args[@]}" -- true 2>/dev/null; then
        echo "could not create a network namespace (unshare ${ns_args[*]});" \
            "set VECHE_TEST_NO_NETNS=1 to run the tests without one" >&2
    fi
    return $rc
}

run_step "install missing tools" install_missing

# Linking: the test binaries (each crate's unit tests, the integration tests'
# one binary `it`, the load-test crate's) each link the whole server or most
# of it, and GNU ld spends much of the test build on those links. mold
# does the same work in a fraction of the time. Only this script uses it
# (developers' own `cargo` runs keep the default linker and their cache),
# and RUSTFLAGS set by the caller win.
if have mold && [[ -z ${RUSTFLAGS:-} ]]; then
    export RUSTFLAGS="-C link-arg=-fuse-ld=mold"
    echo "    linking with mold ($RUSTFLAGS)"
fi

# moto_install: installs the real S3-compatible server that
# tests/recording_s3.rs records into (PyPI `moto[server]`, pinned in
# tests/moto/requirements.txt) into the venv tests/moto/venv, when missing
# or older than the pin. It runs in the background from here on, while
# clippy and the build keep the CPU busy (a fresh install is mostly
# downloads), and is waited for before the tests, which run offline. The
# test finds it there (or at $VECHE_MOTO_SERVER).
moto_install() {
    local dir=tests/moto
    if [[ -x $dir/venv/bin/moto_server && $dir/venv/.installed -nt $dir/requirements.txt ]]; then
        echo "    moto is installed in $dir/venv"
        return 0
    fi
    python3 -m venv "$dir/venv" &&
        "$dir/venv/bin/pip" install --quiet --disable-pip-version-check \
            -r "$dir/requirements.txt" &&
        touch "$dir/venv/.installed"
}

moto_pid=
moto_log=$(mktemp)
if have python3; then
    moto_install >"$moto_log" 2>&1 &
    moto_pid=$!
fi

# moto_wait: the background install's outcome and output.
moto_wait() {
    wait "$moto_pid"
    local rc=$?
    cat "$moto_log"
    return $rc
}

run_step "cargo fmt" cargo fmt --all -- --check
run_step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings

if cargo nextest --version >/dev/null 2>&1; then
    runner=nextest
else
    runner=cargo-test
    echo
    echo "cargo-nextest is not installed; using cargo test" \
        "(install it with: cargo install cargo-nextest --locked)"
fi

if [[ $runner == nextest ]]; then
    build=(cargo nextest run --workspace --no-run)
    tests=(cargo nextest run --workspace --offline "$@")
    doctests=(cargo test --workspace --doc --offline)
else
    build=(cargo test --workspace --no-run)
    # cargo test runs doc tests itself.
    tests=(cargo test --workspace --offline "$@")
    doctests=()
fi

# Every test runner's output is also kept here, to add up the counts for
# the closing "N passed, N failed" line.
counts_log=$(mktemp)
trap 'rm -f "$counts_log"' EXIT
# counted CMD...: runs CMD, copying its output into $counts_log.
counted() {
    "$@" 2>&1 | tee -a "$counts_log"
    return "${PIPESTATUS[0]}"
}

# oidc_provider_install: installs the real OpenID Connect provider that
# tests/oidc_sso.rs signs in through (npm `oidc-provider`, pinned in
# tests/oidc-provider/package-lock.json) when missing or older than the lock
# file. Here, while the registry is reachable: the tests run offline.
oidc_provider_install() {
    local dir=tests/oidc-provider
    if [[ ! -d $dir/node_modules/oidc-provider || $dir/package-lock.json -nt $dir/node_modules/.package-lock.json ]]; then
        (cd "$dir" && npm ci --no-audit --no-fund) || return 1
    fi
}

if have npm; then
    run_step "install the test OIDC provider (npm ci)" oidc_provider_install
else
    skip_step "install the test OIDC provider (npm ci)" "npm is not installed"
fi

if [[ -n $moto_pid ]]; then
    run_step "install the test S3 server (pip: moto[server], in the background)" moto_wait
else
    skip_step "install the test S3 server (pip: moto[server])" "python3 is not installed"
fi

if run_step "build tests" "${build[@]}"; then
    if [[ ${#doctests[@]} -gt 0 ]]; then
        run_step "doc tests" counted in_loopback_netns "${doctests[@]}"
    fi
    run_step "tests (loopback-only network)" counted in_loopback_netns "${tests[@]}"
else
    skip_step "tests (loopback-only network)" "the build failed"
fi

if [[ -d web/test ]]; then
    if have node; then
        run_step "web tests" counted node --test web/test/
    else
        skip_step "web tests" "node is not installed"
    fi
else
    skip_step "web tests" "no web/test directory"
fi

# web_typecheck: installs the pinned TypeScript if web/node_modules lacks it
# or is older than the lock file, then type-checks the web client.
web_typecheck() {
    if [[ ! -x web/node_modules/.bin/tsc || web/package-lock.json -nt web/node_modules/.package-lock.json ]]; then
        (cd web && npm ci --no-audit --no-fund) || return 1
    fi
    web/node_modules/.bin/tsc -p web
}

if [[ -f web/tsconfig.json ]]; then
    if have npm; then
        run_step "web type check (tsc --checkJs)" web_typecheck
    else
        skip_step "web type check (tsc --checkJs)" "npm is not installed"
    fi
fi

print_summary
# One closing line with every test counted: nextest's summary, cargo's
# "test result" lines (doc tests) and node's "# pass"/"# fail".
total_passed=$(grep -oE '([0-9]+) passed' "$counts_log" | awk '{s+=$1} END {print s+0}')
total_failed=$(grep -oE '([0-9]+) failed' "$counts_log" | awk '{s+=$1} END {print s+0}')
node_passed=$(grep -E '^# pass [0-9]+' "$counts_log" | awk '{s+=$3} END {print s+0}')
node_failed=$(grep -E '^# fail [0-9]+' "$counts_log" | awk '{s+=$3} END {print s+0}')
if [[ $failed -ne 0 && $((total_failed + node_failed)) -eq 0 ]]; then
    total_failed=1 # a check (fmt, clippy, build) failed even if no test did
fi
echo "Total: $((total_passed + node_passed)) passed, $((total_failed + node_failed)) failed"
exit $failed
