"""The credit controller's console: server-rendered pages on the API process."""
