"""Importers: runs recorded by other trackers (MLflow, TensorBoard, W&B, CSV/Parquet) become
retrospective logbook entries. One module per source reads it through that source's own library
and yields ``common.SourceRun``; ``common`` turns them into an entry."""
