"""Pure rules of the catalogue: app statuses and referencing, SMART v2 patient scopes in French, PKCE."""
