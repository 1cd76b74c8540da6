"""The web UI: HTML pages rendered on the server, static CSS and JavaScript in static/."""
