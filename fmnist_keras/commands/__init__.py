"""Stage 7, the commands' library functions: `export_and_validate`, `evaluate_artifacts`,
`predict_files`, `bench_and_write` and `describe` (info). The CLI (`fmnist_keras.cli`) only
parses flags and calls these; `fmnist train` calls `training.loop.train_and_evaluate`."""
