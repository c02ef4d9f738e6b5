"""Test selfplay job: writes a step output, records whether the llama-server port answered while it ran."""

from common import run  # type: ignore[import-not-found]

if __name__ == "__main__":
    run(__doc__ or "")
