"""Industry templates, shipped as package data of ``liftos.templates`` (see ``liftos.settings``)."""
