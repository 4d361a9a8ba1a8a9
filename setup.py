"""Maps each top-level folder to the package ``collab.<folder>`` (see pyproject.toml)."""

from setuptools import find_packages, setup

FOLDERS = ["tui", "screens", "widgets", "backend_client", "backend", "flows", "config", "wire"]

packages: list[str] = []
package_dir: dict[str, str] = {}
for folder in FOLDERS:
    package_dir[f"collab.{folder}"] = folder
    packages.append(f"collab.{folder}")
    packages += [f"collab.{folder}.{sub}" for sub in find_packages(folder)]

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={"": ["*.tcss", "*.toml", "*.md"]},
    include_package_data=True,
)
