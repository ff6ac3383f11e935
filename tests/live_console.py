"""A console process for tests that need a real server (concurrency, memory): serves the
app with werkzeug's threaded server on a free port and prints the port on stdout.

`python -m tests.live_console DATABASE_URL [KEY=VALUE ...]`; the overrides are app config
values (JSON when they parse as JSON, text otherwise).
"""

from __future__ import annotations

import json
import sys

from werkzeug.serving import make_server

from config import TestingConfig
from estuary_ops import create_app


def main(argv: list[str]) -> None:
    url, *pairs = argv
    overrides: dict[str, object] = {"SQLALCHEMY_DATABASE_URI": url}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            overrides[key] = json.loads(value)
        except ValueError:
            overrides[key] = value
    app = create_app(TestingConfig, **overrides)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
