"""The LiftOS hub: the API every client goes through (``api``) and the web page on it."""
