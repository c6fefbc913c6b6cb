"""The task zoo (CharRNN, sequential MNIST over eight architectures, FORCE signal reconstruction).

Built by the issue "task zoo"; its recurrent modules expose ``lyapunov_cell(state=...)`` so that
``aelle.cell_for`` analyses them.
"""
