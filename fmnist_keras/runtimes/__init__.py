"""Stage 3, the runtimes: one place that opens any artifact (.keras in safe mode, SavedModel,
.tflite) and checks it against the input contract, and one interface per runtime (Keras,
TensorFlow, LiteRT, TensorFlow Lite Micro) that runs a batch of raw pixels and returns
float32 logits. Imports nothing from training, export, deploy or the commands."""
