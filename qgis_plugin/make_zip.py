"""Zip the QGIS plugin for Plugins > Manage and Install Plugins > Install from ZIP.

``python qgis_plugin/make_zip.py [-o FOLDER]`` writes ``FOLDER/fsanet_processing-<version>.zip``
(default folder: ``dist/`` in the repository) holding ``fsanet_processing/`` without caches,
and prints its path. Standard library only: any Python 3.8+ runs it.
"""

from __future__ import annotations

import argparse
import configparser
import zipfile
from pathlib import Path

PLUGIN = Path(__file__).resolve().parent / "fsanet_processing"
SKIP = {"__pycache__", ".pytest_cache"}


def plugin_version(plugin: Path = PLUGIN) -> str:
    """``version`` from the plugin's metadata.txt."""
    metadata = configparser.ConfigParser()
    metadata.read(plugin / "metadata.txt", encoding="utf-8")
    return metadata["general"]["version"]


def make_zip(folder: Path, plugin: Path = PLUGIN) -> Path:
    """Write the plugin's zip into ``folder`` (created if missing); files in sorted order with a
    fixed timestamp, so the same sources give the same bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{plugin.name}-{plugin_version(plugin)}.zip"
    files = sorted(p for p in plugin.rglob("*")
                   if p.is_file() and not SKIP.intersection(p.relative_to(plugin).parts) and p.suffix != ".pyc")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            info = zipfile.ZipInfo(f"{plugin.name}/{path.relative_to(plugin).as_posix()}", (2024, 1, 1, 0, 0, 0))
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            archive.writestr(info, path.read_bytes())
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output-dir", type=Path, default=PLUGIN.parents[1] / "dist",
                        help="folder for the zip (default: dist/ in the repository)")
    print(make_zip(parser.parse_args().output_dir))


if __name__ == "__main__":
    main()
