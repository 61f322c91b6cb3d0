"""The campaigns over HTTP: the API, Twilio's callbacks of assisted calls, the French pages
and the exports (CSV, XLSX)."""
