"""Regenerate ``.dvc/plots/offline_page.html``: DVC's plots page with vega, vega-lite and vega-embed inlined.

    python scripts/build_plots_page.py            # npm pack the pinned tarballs, check them, write the page
    python scripts/build_plots_page.py --check    # only check the committed page (no network)

`dvc plots show|diff` fill the page template (``plots.html_template`` in ``.dvc/config``) by plain text
replacement of ``{plot_divs}``, ``{scripts}`` and ``{refresh_tag}``; DVC's own page loads the three
libraries from a CDN through ``{scripts}``, so it draws nothing offline. This page has no ``{scripts}``
and carries the libraries' UMD builds itself. The tarballs come from the npm registry (``npm pack``),
checked against the integrity hashes pinned here; all three are BSD-3-Clause (their notices are kept).
Stdlib only.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / ".dvc" / "plots" / "offline_page.html"
# (package, version, npm's dist.integrity, inlined file, global it defines), in load order.
# The newest releases of the majors DVC's own page uses (dvc-render 1.0.2: vega 5, vega-lite 5, vega-embed 6).
PACKAGES = (
    (
        "vega",
        "5.33.1",
        "sha512-1fArfVDUqVbb5z8n+/nVQb+VNBzx8svY6CrsyTK4Ujm4yrd9I1auoKxBAPXLCavY1LcrbHUskQbGUP8gXOzyQw==",
        "build/vega.min.js",
        "vega",
    ),
    (
        "vega-lite",
        "5.23.0",
        "sha512-l4J6+AWE3DIjvovEoHl2LdtCUkfm4zs8Xxx7INwZEAv+XVb6kR6vIN1gt3t2gN2gs/y4DYTs/RPoTeYAuEg6mA==",
        "build/vega-lite.min.js",
        "vegaLite",
    ),
    (
        "vega-embed",
        "6.29.0",
        "sha512-PmlshTLtLFLgWtF/b23T1OwX53AugJ9RZ3qPE2c01VFAbgt3/GSNI/etzA/GzdrkceXFma+FDHNXUppKuM0U6Q==",
        "build/vega-embed.min.js",
        "vegaEmbed",
    ),
)
BUNDLED = (
    "vega-embed's bundle also holds fast-json-patch (MIT), json-stringify-pretty-compact (MIT), semver (ISC), "
    "tslib (0BSD), vega-themes, vega-tooltip, vega-schema-url-parser, vega-interpreter (BSD-3-Clause)"
)
PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")
TEMPLATE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>DVC Plot</title>
<!--
  Page template for `dvc plots show|diff` that works offline; regenerate it with scripts/build_plots_page.py.
  Inlined unchanged (only `</script` written as `<\\/script`):
{manifest}
  {bundled}.
{licenses}
-->
{scripts}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def npm_pack(name: str, version: str, integrity: str, folder: Path) -> Path:
    """The package's tarball from the npm registry, refused unless it matches the pinned integrity."""
    subprocess.run(
        ["npm", "pack", f"{name}@{version}", "--silent", "--pack-destination", str(folder)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    tgz = folder / f"{name}-{version}.tgz"
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tgz.read_bytes()).digest()).decode()
    if digest != integrity:
        raise SystemExit(f"error: {tgz.name}: integrity {digest} is not the pinned {integrity}")
    return tgz


def inline_script(js: str, what: str) -> str:
    """The library as a safe <script> body: nothing DVC would replace, nothing that ends the element early."""
    for placeholder in PLACEHOLDERS:
        if placeholder in js:
            raise SystemExit(f"error: {what} contains {placeholder}, which DVC would replace")
    if "<!--" in js:  # would switch the HTML parser into its escaped script state
        raise SystemExit(f"error: {what} contains '<!--'")
    return re.sub(r"</(script)", r"<\\/\1", js, flags=re.IGNORECASE)


def read(tar: tarfile.TarFile, path: str) -> str:
    return tar.extractfile(f"package/{path}").read().decode("utf-8")


def build(folder: Path) -> str:
    manifest, licenses, scripts = [], [], []
    for name, version, integrity, member, global_name in PACKAGES:
        with tarfile.open(npm_pack(name, version, integrity, folder), "r:gz") as tar:
            package = json.loads(read(tar, "package.json"))
            js = inline_script(read(tar, member), name)
            notice = (
                read(tar, "LICENSE").strip()
                if "package/LICENSE" in tar.getnames()
                else "(the npm tarball has no LICENSE file; its package.json says BSD-3-Clause; "
                "University of Washington Interactive Data Lab, https://github.com/vega/vega)"
            )
        manifest.append(
            f"    {name}@{version} ({package['license']}): {member} -> window.{global_name}, npm integrity {integrity}"
        )
        licenses.append(f"  ---- {name} ----\n{notice.replace('--', '- -')}")  # no `--` inside a comment
        scripts.append(f'    <script type="text/javascript">/* {name}@{version} */\n{js}\n</script>')
    return TEMPLATE.format(
        manifest="\n".join(manifest), bundled=BUNDLED, licenses="\n".join(licenses), scripts="\n".join(scripts)
    )


def check(page: str) -> None:
    """One ``{plot_divs}``, no ``{scripts}`` (DVC's CDN tags), no remote script, the three pinned libraries."""
    problems = []
    if page.count("{plot_divs}") != 1:
        problems.append("needs exactly one {plot_divs}")
    if "{scripts}" in page:
        problems.append("{scripts} would bring back DVC's CDN <script src> tags")
    if re.search(r"<script[^>]*\ssrc\s*=", page, re.IGNORECASE):
        problems.append("a <script src=...> loads code from elsewhere")
    for name, version, _, _, _ in PACKAGES:
        if f"/* {name}@{version} */" not in page:
            problems.append(f"{name}@{version} is not inlined")
    if problems:
        raise SystemExit(f"error: {PAGE.relative_to(ROOT)}: " + "; ".join(problems))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the committed page")
    args = parser.parse_args(argv)
    if not args.check:
        with tempfile.TemporaryDirectory() as folder:
            page = build(Path(folder))
        check(page)
        PAGE.write_text(page, encoding="utf-8")
    check(PAGE.read_text(encoding="utf-8"))
    print(
        f"{PAGE.relative_to(ROOT)}: {PAGE.stat().st_size:,} bytes, "
        + ", ".join(f"{name}@{version}" for name, version, *_ in PACKAGES)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
