"""The original method's driving video: recording it (`monalisa record`), its gaze file, reading it."""
