"""``python -m lbaas.amphora.agent --config-file FILE``: run the agent in the foreground."""
from __future__ import annotations

import argparse
import logging
import logging.handlers
from pathlib import Path

from lbaas.amphora.agent.config import AgentConfig
from lbaas.amphora.agent.services import AgentServices


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv`` (default: the command line), load the configuration, serve forever."""
    parser = argparse.ArgumentParser(prog="lbaas amphora-agent")
    parser.add_argument("--config-file", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        config = AgentConfig.load(args.config_file)
    except KeyError as exc:  # parser.error exits with status 2
        parser.error(f"{args.config_file}: missing section or option {exc}")
    except (OSError, ValueError) as exc:
        parser.error(f"{args.config_file}: {exc}")
    handler: logging.Handler = logging.StreamHandler()
    if config.log_file is not None:
        handler = logging.handlers.RotatingFileHandler(
            config.log_file, maxBytes=config.log_max_bytes, backupCount=config.log_backup_count)
    logging.basicConfig(level=logging.INFO, handlers=[handler],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    services = AgentServices(config)
    services.start()
    services.serve_forever()


if __name__ == "__main__":
    main()
