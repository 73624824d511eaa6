"""Pure rules of the messaging: what a message may hold, the patient address, reading inbound mail."""
