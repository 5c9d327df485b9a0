"""Virtual Observatory: ADQL, TAP and its schema, UWS jobs, cone search, VOTable, DataLink and ObsCore."""
