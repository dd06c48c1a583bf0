"""Training a model: a job prepared from the options, the loop that yields progress, its state,
optimizer, signals, processes and fine-tuning (torch only inside the modules that train)."""
