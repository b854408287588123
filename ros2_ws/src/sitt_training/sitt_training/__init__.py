"""Student-Informed Teacher Training: tasks, methods, trainer, evaluation and export."""

__version__ = "0.1.0"
