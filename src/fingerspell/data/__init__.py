"""Data: archive reading, validation, preprocessing, augmentation and the DataModule."""
