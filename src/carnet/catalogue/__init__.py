"""The app catalogue (CAT-1..3): referenced apps connect to a patient's space with SMART on FHIR (OAuth 2
authorisation code + PKCE S256), only with the person's consent, revocable at once."""
