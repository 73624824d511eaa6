"""The whole space, to take away (ENR-7): a ZIP of one FHIR Bundle, the original files and a French LISEZMOI."""
