"""Reports read back from run directories on disk: gradient health per layer, grids of short
trainings, figures, and the chain rule checked against finite differences."""

from dlexp.report.gradients import RunReport, Thresholds, grad_report

__all__ = ["RunReport", "Thresholds", "grad_report"]
