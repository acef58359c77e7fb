"""One parse per botocore data file in a process, however many botocore sessions it makes:
the test processes (a fresh session per CLI call and per poller pass), and the local
runtime's zygote, whose parse every warm-started agent session inherits."""

from __future__ import annotations

from typing import Any

from botocore.loaders import JSONFileLoader

_parsed: dict[str, Any] = {}


def share_parsed_data_files() -> None:
    """Parse each of botocore's JSON data files (service models, endpoints, partitions) once
    per process and hand every later loader the same object.

    botocore caches what it parses per session only, and the code under test makes a fresh
    session per CLI call and per poller pass, as a fresh process would: each one re-parsed
    megabytes of JSON, most of the time of a client-heavy test. Sharing the parsed files
    across sessions is what botocore already does across the clients of one session, so the
    clients, the requests and the answers are the same. Files only: no session, client,
    credential or event hook is shared."""
    if getattr(JSONFileLoader.load_file, "shares_parsed_files", False):
        return
    parse = JSONFileLoader.load_file

    def load_file(self: JSONFileLoader, file_path: str) -> Any:
        try:
            return _parsed[file_path]
        except KeyError:
            data = parse(self, file_path)
            if data is not None:  # a miss is cheap, and a file may appear later
                _parsed[file_path] = data
            return data

    load_file.shares_parsed_files = True  # type: ignore[attr-defined]
    JSONFileLoader.load_file = load_file
