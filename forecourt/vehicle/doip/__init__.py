"""ISO 13400-2 Diagnostics over IP: pure frames (:mod:`.frames`) and the entity (:mod:`.entity`)."""
