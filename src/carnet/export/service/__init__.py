"""The service of the export: asking, building (a job), downloading, and importing into another Carnet."""
