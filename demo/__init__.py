"""The demo: a project drawn and imported through the platform's own services, its logins, its first
jobs and its first release. It sits on top of every app and nothing imports it but its command and tests."""
