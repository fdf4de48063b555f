"""Stage 4, training: `train_and_evaluate` (what `fmnist train` runs), the compute dtype
(`--precision`), tf.distribute strategies, checkpoints and resuming. Never imports export."""
