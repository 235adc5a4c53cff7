"""The bundled tenants, shipped as package data of ``liftos.tenants`` (see ``liftos.settings``)."""
