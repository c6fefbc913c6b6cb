"""An example AeLLE task plugin: ``sines``, a GRU forecaster of a noisy sum of sines."""
