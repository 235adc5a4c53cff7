"""Work pool, automations, limits and Dask cluster spec (and a link to ``prefect.yaml``), shipped as
package data of ``liftos.deployments`` (see ``liftos.settings``)."""
