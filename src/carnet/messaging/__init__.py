"""Secure messaging between care teams and the patient (MSG-1..4)."""
