"""The vehicle dossier: one car's whole record in one versioned document (JSON or HTML)."""
