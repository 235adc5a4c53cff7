"""Feature engineering: calendar features and media transformations."""
