"""``python -m lbaas.amphora.agent --config-file FILE``: run the agent in the foreground."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from lbaas.amphora.agent.config import AgentConfig
from lbaas.amphora.agent.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="lbaas amphora-agent")
    parser.add_argument("--config-file", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(AgentConfig.load(args.config_file))


if __name__ == "__main__":
    main()
