"""Stage 5, export: from a trained Keras model to artifact bytes, and the rules they must meet.

- converters: Keras -> SavedModel / .tflite bytes (pure functions), and the export options' rules
- variants, tfmot: the full-integer models (post-training, QAT, pruning, clustering with tfmot)
- op_checks: what a deployable .tflite may contain (builtin ops, batch 1, integer all through)
- gate: artifact vs float model comparison, and the pass/fail rule (NaN/inf always fail)
- report: terminal summary, report.md, MODEL_CARD.md

The recipe that runs these, verifies every file and publishes all or nothing is
`fmnist_keras.commands.export.export_and_validate`. Never imports deploy or a command.
"""
