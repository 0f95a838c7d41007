"""Models: networks, training, distillation, detection on a stream, checkpoints."""
