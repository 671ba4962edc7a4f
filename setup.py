"""Build hook: the wheel carries configs/ and data/ as the package data dlexp/examples/.

The gallery's claims train on these configs and datasets (dlexp.resources finds them), so `pip install .`
followed by `dlexp gallery --quick` works from any folder. The checkout keeps one copy of each file.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = {"configs": "*.yaml", "data": "*.csv"}


class BuildWithExamples(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "dlexp" / "examples"
        for folder, pattern in BUNDLED.items():
            for source in sorted((ROOT / folder).rglob(pattern)):
                copy = target / source.relative_to(ROOT)
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, copy)


setup(cmdclass={"build_py": BuildWithExamples})
