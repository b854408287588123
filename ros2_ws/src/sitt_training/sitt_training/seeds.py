"""Seed ranges shared by training, evaluation and the sim bridge (no torch here, so the
bridge can default to the test seed without importing the trainer).

Training seeds are below ``MAX_TRAIN_SEED``; validation during training uses
``VALIDATION_SEED``; reported test numbers (``sitt-eval``, the sim bridge) use ``TEST_SEED``.
"""

MAX_TRAIN_SEED = 1_000_000
VALIDATION_SEED = 1_000_003
TEST_SEED = 1_000_033
