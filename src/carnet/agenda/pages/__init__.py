"""The agenda's pages: appointments and reminders (``events``), the recommended examinations (``prevention``)."""
