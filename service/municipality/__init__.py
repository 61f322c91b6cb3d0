"""The municipality: its configuration model and tables, its calendar (hours, holidays,
closures) and French formatting of dates."""
