"""The agenda over FHIR R4: ``Appointment`` (``appointments``), ``ImmunizationRecommendation`` (``recommendations``)."""
