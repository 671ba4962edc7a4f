"""The NumPy MLP engine: layers, activations, initializers, losses. Never prints, never imports the CLI."""

from dlexp.nn.activations import ACTIVATIONS, make_activation
from dlexp.nn.initializers import INITIALIZERS, make_initializer
from dlexp.nn.losses import LOSSES, make_loss
from dlexp.nn.model import MLP

__all__ = ["ACTIVATIONS", "INITIALIZERS", "LOSSES", "MLP", "make_activation", "make_initializer", "make_loss"]
