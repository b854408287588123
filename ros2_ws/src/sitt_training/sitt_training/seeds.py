"""Seed ranges shared by training, evaluation and the sim bridge (no torch here, so the
bridge can default to the test seed without importing the trainer).

Training seeds are below ``MAX_TRAIN_SEED``; validation during training uses
``VALIDATION_SEED``; reported test numbers (``sitt-eval``, the sim bridge) use ``TEST_SEED``.
A scripted expert's demonstrations (``train.teacher_demos``) are laid out from
``DEMO_SEED`` + the training seed, apart from all of these.
"""

MAX_TRAIN_SEED = 1_000_000
VALIDATION_SEED = 1_000_003
TEST_SEED = 1_000_033
DEMO_SEED = 2_000_000
