"""Runs and the files charrnn keeps: where they live, their names, locks, the store of runs,
checkpoints, what is read back from them, and their loss curves (torch only in checkpoint.py)."""
