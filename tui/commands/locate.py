"""``collab locate``: every path collab uses (config, data, state, logs, runtime, presets)."""

from __future__ import annotations

import argparse
import json


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("locate", help="print every path collab uses",
                            description="Print every path collab uses, labelled (config, data, state, logs...).")
    parser.add_argument("--json", action="store_true", help="as a JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from collab.config import ConfigError, load_config, locate

    data_dir = getattr(args, "data_dir", None)
    config_path = getattr(args, "config", None)
    if data_dir is None:
        try:  # a data dir set in the config file shows too
            data_dir = load_config(config_path).data_dir
        except ConfigError:
            pass
    paths = locate(config_file_path=config_path, data_dir_path=data_dir)
    from collab.tui.backend_launcher import LOG_NAME, find_backend

    paths["backend_log"] = paths["log_dir"] / LOG_NAME
    found = find_backend(paths["data_dir"])
    if args.json:
        out = {k: str(v) for k, v in paths.items()}
        out["backend_url"] = found.url if found else ""
        print(json.dumps(out, indent=2))
        return 0
    width = max(len(k) for k in paths)
    for label, path in paths.items():
        print(f"{label:<{width}}  {path}{'' if path.exists() else '  (not created yet)'}")
    print(f"{'backend':<{width}}  {found.url + f' (pid {found.pid})' if found else 'not running'}")
    return 0
