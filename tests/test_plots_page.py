"""`dvc plots show|diff` use the committed offline page (what it draws in a browser is checked in
test_browser.py)."""

from __future__ import annotations

import subprocess
import sys

from configobj import ConfigObj  # DVC's own config reader

from helpers import REPO_ROOT

PLOTS_DIR = REPO_ROOT / ".dvc" / "plots"


def test_the_projects_plots_page_is_the_offline_one():
    page = ConfigObj(str(REPO_ROOT / ".dvc" / "config"))["plots"]["html_template"]
    assert (REPO_ROOT / ".dvc" / page).resolve() == PLOTS_DIR / "offline_page.html"  # relative to .dvc/
    check = subprocess.run(
        [sys.executable, "scripts/build_plots_page.py", "--check"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
