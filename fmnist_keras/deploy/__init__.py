"""Stage 6, what a device needs: the MediaPipe Tasks file with its label metadata, and the
int8 model as a C array for TensorFlow Lite Micro with its tensor-arena budget, each verified
by the runtime that will run it."""
