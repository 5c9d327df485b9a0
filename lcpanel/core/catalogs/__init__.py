"""Catalogs: the basedir's collections, their columns, catalogs, sky and text indexes, filters and ingest."""
