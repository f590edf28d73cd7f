"""The wheel carries the assets, and they are found from it (not only from a checkout)."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_ships_assets_and_finds_them(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True, timeout=300, capture_output=True)
    (wheel,) = tmp_path.glob("virttui-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for asset in ("virttui/assets/demo/hv1.xml", "virttui/assets/demo/hv2.xml", "virttui/assets/demo/hv3.xml",
                  "virttui/assets/styles/virttui.tcss", "virttui/assets/config.sample.toml"):
        assert asset in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = "import virttui.assets as a; print(a.assets_dir())"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(site)},
                         capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == str(site / "virttui" / "assets")


def test_the_readme_is_for_users_and_its_links_resolve():
    """At most 250 lines (measurements and internals live in docs/), every relative link a real file."""
    import re
    from pathlib import Path

    root = Path(__file__).parents[2]
    readme = (root / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if not target.startswith("http"):
            assert (root / target).exists(), target
