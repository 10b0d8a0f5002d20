"""The browser UI: server-rendered Jinja2 pages with htmx, behind the same login and roles as the API."""
