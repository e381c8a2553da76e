"""DVC stage: fetch aclImdb_v1.tar.gz to the given path.

Source and checksum come from IMDB_SOURCE / IMDB_MD5 (see imdb_rnn.download);
by default the official Stanford URL, verified against its published md5.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this workspace's code, also in DVC temp workspaces

from imdb_rnn.download import DownloadError, fetch, resolve_source  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Download the IMDB archive (aclImdb_v1.tar.gz).")
    parser.add_argument("out", type=Path, help="destination, e.g. data/raw/aclImdb_v1.tar.gz")
    parser.add_argument("--retries", type=int, default=4, help="extra HTTP attempts (default 4)")
    parser.add_argument("--backoff", type=float, default=1.0, help="first retry delay in s, doubled each time")
    args = parser.parse_args(argv)

    source, md5 = resolve_source(os.environ)
    print(f"downloading {source} -> {args.out}", flush=True)
    try:
        fetch(source, args.out, md5, retries=args.retries, backoff=args.backoff)
    except DownloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; nothing was written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
