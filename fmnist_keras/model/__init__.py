"""Stage 2, the model: the article's CNN (the one list of its layers, its parameter and
multiply-accumulate counts) and the fused BatchNormalization the training graph uses."""
