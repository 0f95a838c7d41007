"""The dataset: synthesis, augmentation, curation, outliers, splits, the data card."""
