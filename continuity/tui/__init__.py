"""The receptionist's Textual app: unlock, search, patient summary, agenda, status, prescription."""
