"""Online authorisation: ``POST /v1/activations`` decides and signs, once per car at a time."""
