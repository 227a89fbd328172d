#!/usr/bin/env bash
# Create or refresh the project's virtualenv (.venv) and install artdag into it, editable.
#   scripts/bootstrap.sh          runtime dependencies only
#   scripts/bootstrap.sh test     plus what the tests need
# Re-running is cheap: pip runs only when pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
extra="${1:-}"

pick_python() {
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "artdag: Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  py="$(pick_python)"
  echo "artdag: creating virtualenv in $VENV with $py" >&2
  "$py" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip >&2
fi

target="."
[ "$extra" = "test" ] && target=".[test]"
stamp="$VENV/.artdag-install-${extra:-run}"
want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "artdag: installing dependencies into $VENV" >&2
  (cd "$ROOT" && "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e "$target" >&2)
  echo "$want" > "$stamp"
fi

# libp2p depends on trio-typing, whose "trio-stubs" (2023) shadow trio's own inline type hints
# for mypy (no TaskStatus, wrong signatures). Nothing imports trio-stubs at run time (libp2p uses
# the trio_typing module, which stays), so remove the stubs and let mypy read trio itself.
site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
rm -rf "$site/trio-stubs"
