"""Tiny settings per task: an epoch in well under a second on the CPU."""

TINY = {
    "smnist": {"epochs": 1, "hidden": 16, "train_size": 256, "val_size": 128, "batch_size": 64,
               "spectrum_sequences": 4, "spectrum_steps": 24, "spectrum_warmup": 8,
               "device": "cpu"},
    "charrnn": {"epochs": 1, "max_chars": 20_000, "seq_len": 50, "batch_size": 32,
                "spectrum_sequences": 3, "spectrum_steps": 30, "spectrum_warmup": 5,
                "device": "cpu"},
    "signal": {"epochs": 1, "hidden": 64, "steps": 300, "spectrum_sequences": 3,
               "spectrum_steps": 30, "device": "cpu"},
    "sysid": {"epochs": 1, "hidden": 6, "seq_len": 40, "train_sequences": 16,
              "val_sequences": 4, "spectrum_sequences": 3, "spectrum_steps": 20,
              "spectrum_warmup": 5, "device": "cpu"},
    "flipflop": {"epochs": 1, "hidden": 8, "seq_len": 30, "train_sequences": 32,
                 "val_sequences": 8, "spectrum_sequences": 3, "spectrum_steps": 20,
                 "spectrum_warmup": 5, "device": "cpu"},
}

PARAMS = {
    "charrnn": {"hidden": 16, "p": 0.1, "lr": 3e-3, "dropout": 0.1},
    "signal": {"g": 1.4, "connectivity": 0},
    "sysid": {"arch": "lstm", "p": 0.3, "lr": 1e-2},
    "flipflop": {"arch": "gru", "p": 0.3, "lr": 1e-2},
}


def smnist_params(arch: str, p: float = 0.5) -> dict:
    return {"arch": arch, f"p_{arch}": p}
