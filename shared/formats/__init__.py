"""Layer 2: what is written to disk and read back: the run directory, checkpoints, neutral weights, optimizer state,
ONNX checks, the tolerance table and the pretrained ResNet-18 file."""
