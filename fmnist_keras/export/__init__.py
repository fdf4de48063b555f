"""`fmnist export`: from a trained model to verified deployable files.

- pipeline: `export_and_validate`, the recipe: convert, verify every file, publish all or nothing
- converters: Keras -> SavedModel / .tflite bytes (pure functions), and the export options' rules
- variants, tfmot: the full-integer models (post-training, QAT, pruning, clustering with tfmot)
- op_checks: what a deployable .tflite may contain (builtin ops, batch 1, integer all through)
- gate: artifact vs float model comparison, and the pass/fail rule (NaN/inf always fail)
- micro, budget: TensorFlow Lite Micro C source, and flash / measured arena / MACs per int8 file
- mediapipe_client: the MediaPipe Tasks ImageClassifier file, its metadata and its real-client check
- report: terminal summary, report.md, MODEL_CARD.md
"""
