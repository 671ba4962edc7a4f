"""Datasets: synthetic generators and CSV files, split into train/val/test and standardized.

``load_data(cfg, base_dir, rng)`` is the one way in; it returns a :class:`Dataset`.
"""

from dlexp.data.dataset import Dataset, load_data

__all__ = ["Dataset", "load_data"]
