"""Stage 1, the data: the real Fashion-MNIST IDX files (found, read, checked against their
SHA-256), the training/validation split, tf.data pipelines with the training-time
augmentation, and user pictures turned into the model's 28x28 input."""
