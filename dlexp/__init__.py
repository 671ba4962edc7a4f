"""dlexp: experiments on how neural networks train, on a pure-NumPy MLP engine."""

__version__ = "0.1.0"
