"""Corpora: connectors per layout, ingestion, the landing zone, batches and clip cutting."""
