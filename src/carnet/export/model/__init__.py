"""What an export is made of, as plain values: what each capability contributes (``Exported``), the archive's layout
and its manifest (``archive``), and the French reading guide (``guide``)."""
