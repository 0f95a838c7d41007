"""Storage: the object store (local or S3), the clip store, staged Parquet, atomic files."""
