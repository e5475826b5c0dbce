"""The live loop: camera -> detector -> viewer -> gaze -> renderer, and the mouse-driven preview."""
