# shellcheck shell=bash
# Sourced by scripts/test.sh after scripts/lib/docker.sh (for `log`, `die` and SCRIPTS_DIR).
#
# What lives here: the real Express app that examples/express-tutorial's cross-side tests run
# beside the Rust one (examples/express-tutorial/express): Node.js and npm from Debian's
# packages when missing, and its packages installed with `npm ci` from the lockfile.

EXPRESS_APP_DIR=$SCRIPTS_DIR/../examples/express-tutorial/express

# Debian packages the Express app needs, if any: nothing when `node` and `npm` exist already
# (Node.js from elsewhere is fine).
node_packages() {
  command -v node >/dev/null 2>&1 || echo nodejs
  command -v npm >/dev/null 2>&1 || echo npm
}

# `npm ci` of the Express app: exactly the lockfile's versions, from the registry the machine's
# npm configuration names (the lockfile names none).
express_app_install() {
  command -v node >/dev/null 2>&1 || die "no node after installing nodejs"
  command -v npm >/dev/null 2>&1 || die "no npm after installing npm"
  log "npm ci in examples/express-tutorial/express (node $(node --version), npm $(npm --version))"
  (cd "$EXPRESS_APP_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) \
    || die "npm ci failed in $EXPRESS_APP_DIR"
}
