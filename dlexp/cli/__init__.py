"""The dlexp command line. Each module registers its commands on the one Typer app."""

from dlexp.cli import gallery as _gallery  # noqa: F401
from dlexp.cli import lrtune as _lrtune  # noqa: F401
from dlexp.cli import predict as _predict  # noqa: F401
from dlexp.cli import report as _report  # noqa: F401
from dlexp.cli import share as _share  # noqa: F401
from dlexp.cli import sweep as _sweep  # noqa: F401
from dlexp.cli import train as _train  # noqa: F401
from dlexp.cli.app import app, main

__all__ = ["app", "main"]
