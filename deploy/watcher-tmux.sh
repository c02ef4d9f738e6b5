#!/usr/bin/env bash
# Runs the watcher daemon in a named tmux session: starts it when the session does not exist, then attaches
# (or switches to it from inside tmux; without a terminal it just says where it runs).
#
#   deploy/watcher-tmux.sh [SESSION]     default session name: $WATCHER_TMUX_SESSION, else "watcher"
#   WATCHER_BIN=/path/to/watcher         default: .venv/bin/watcher of this checkout
#
# The pane stays open when the daemon exits, so its last words can be read. Stop it with Ctrl-C in the pane
# (SIGINT: running evaluations finish first; a second Ctrl-C forces).
set -euo pipefail

session="${1:-${WATCHER_TMUX_SESSION:-watcher}}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${WATCHER_BIN:-$root/.venv/bin/watcher}"

if ! command -v tmux >/dev/null 2>&1; then
    echo "watcher-tmux: tmux is not installed" >&2
    exit 1
fi
if [ ! -x "$bin" ]; then
    echo "watcher-tmux: $bin not found or not executable; run 'make setup' first" >&2
    exit 1
fi

if ! tmux has-session -t "=$session" 2>/dev/null; then
    # The command is given as separate words, so tmux runs it without a shell.
    tmux new-session -d -s "$session" -c "$root" "$bin" run \; set-option -t "$session" remain-on-exit on
    echo "watcher-tmux: started the daemon in tmux session '$session'"
fi

if [ -n "${TMUX:-}" ]; then
    exec tmux switch-client -t "=$session"
elif [ -t 0 ] && [ -t 1 ]; then
    exec tmux attach-session -t "=$session"
else
    echo "watcher-tmux: session '$session' is running; attach with: tmux attach -t $session"
fi
