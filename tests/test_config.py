"""Industry templates load, validate, and accept field-by-field tenant overrides."""

import pytest

from liftos.config import available_templates, load_template, load_tenant_template
from liftos.errors import ConfigError


def test_industry_templates_load_with_expected_carry_over():
    assert {"ecommerce", "education", "healthcare"} <= set(available_templates())
    ecommerce, education = load_template("ecommerce"), load_template("education")
    healthcare = load_template("healthcare")
    # education's carry-over windows are longer than e-commerce's, channel by channel
    assert education.channel("search").adstock.max_lag > ecommerce.channel("search").adstock.max_lag
    assert education.channel("tv").adstock.type == "weibull"
    assert education.kpi.kind == "count" and ecommerce.kpi.kind == "revenue"
    assert healthcare.channel_defaults.saturation.type == "hill"
    for template in (ecommerce, education, healthcare):
        for channel in template.channels.values():
            assert channel.roas_bounds[0] < channel.roas_bounds[1]


def test_unknown_channel_falls_back_to_channel_defaults():
    template = load_template("ecommerce")
    assert template.channel("podcast") == template.channel_defaults


def test_a_named_channel_starts_from_the_templates_channel_defaults():
    """Only the keys a channel sets are its own; the rest are its template's defaults."""
    healthcare, education = load_template("healthcare"), load_template("education")
    assert healthcare.channel("search").saturation == healthcare.channel_defaults.saturation
    assert healthcare.channel("search").budget_bounds == (0.7, 1.3)
    assert healthcare.channel("tv").budget_bounds == (0.5, 1.5)  # its own
    assert education.channel("tv").roas_bounds == (0.00001, 0.05)
    assert education.channel("tv").effect_prior.sigma == 1.0
    assert education.channel("tv").adstock.type == "weibull"  # its own, not merged
    podcast = load_template("ecommerce", {"channels": {"podcast": {"adstock": {"max_lag": 8}}}})
    assert podcast.channel("podcast").adstock.max_lag == 8
    assert podcast.channel("podcast").adstock.priors == podcast.channel_defaults.adstock.priors
    generic = load_template("generic", {"channels": {
        "tv": {"effect_prior": {"dist": "HalfNormal", "sigma": 0.5}}, "radio": {}}})
    assert generic.channel("tv").roas_prior is None  # the prior it names
    assert generic.channel("radio").roas_prior == generic.channel_defaults.roas_prior


def test_a_bad_default_is_named_once_at_its_source_not_in_every_channel_inheriting_it():
    with pytest.raises(ConfigError) as err:
        load_template("ecommerce", {"channel_defaults": {"budget_bounds": [5, 1]},
                                    "channels": {"tv": {"roas_bounds": [3, 1]}}})
    message = str(err.value)
    assert "channel_defaults.budget_bounds" in message and "channels.tv.roas_bounds" in message
    assert "channels.search" not in message and len(message.splitlines()) == 3


def test_tenant_overrides_field_by_field(tmp_path):
    tenant = tmp_path / "acme.yaml"
    tenant.write_text(
        "template: ecommerce\n"
        "overrides:\n"
        "  kpi: {name: orders}\n"
        "  channels:\n"
        "    tv: {adstock: {max_lag: 12}}\n")
    template = load_tenant_template(tenant)
    base = load_template("ecommerce")
    assert template.kpi.name == "orders" and template.kpi.unit == base.kpi.unit
    assert template.channel("tv").adstock.max_lag == 12
    # untouched fields of the same object keep the template's values
    assert template.channel("tv").adstock.priors == base.channel("tv").adstock.priors
    assert template.channel("tv").roas_bounds == base.channel("tv").roas_bounds


def test_override_changing_type_replaces_the_block():
    template = load_template("ecommerce", {"channels": {"tv": {"adstock": {"type": "weibull"}}}})
    assert template.channel("tv").adstock.type == "weibull"
    assert set(template.channel("tv").adstock.priors) == {"shape", "scale"}


def test_unknown_key_names_file_and_key(tmp_path):
    tenant = tmp_path / "bad.yaml"
    tenant.write_text("template: ecommerce\noverrides:\n  channels:\n    tv: {adstok: {}}\n")
    with pytest.raises(ConfigError) as err:
        load_tenant_template(tenant)
    message = str(err.value)
    assert str(tenant) in message and "channels.tv.adstok" in message and "unknown key" in message


def test_wrong_type_names_key_and_expected_type(tmp_path):
    tenant = tmp_path / "bad.yaml"
    tenant.write_text("template: ecommerce\noverrides:\n  seasonality: {yearly_fourier_order: two}\n")
    with pytest.raises(ConfigError) as err:
        load_tenant_template(tenant)
    message = str(err.value)
    assert "seasonality.yearly_fourier_order" in message and "integer" in message
    assert "'two'" in message


def test_a_roas_prior_that_allows_negative_roas_is_refused_naming_the_key(tmp_path):
    tenant = tmp_path / "bad.yaml"
    tenant.write_text("template: generic\noverrides:\n  channels:\n    tv:\n      roas_prior: "
                      "{dist: Normal, mu: 1, sigma: 1}\n")
    with pytest.raises(ConfigError) as err:
        load_tenant_template(tenant)
    message = str(err.value)
    assert "channels.tv.roas_prior" in message and "a ROAS prior must be positive" in message


def test_unknown_template_lists_the_available_ones():
    with pytest.raises(ConfigError, match="available: .*ecommerce"):
        load_template("retail-banking")


def test_a_tenant_file_may_set_its_brief_language_and_surfacing_panel(tmp_path):
    """Every key a tenant file documents is accepted (``language`` was refused as unknown)."""
    from support import DEMO_DATA, write_tenant

    from liftos.tenancy import load_tenant

    path = write_tenant(tmp_path, "acme", DEMO_DATA, language="de",
                        surfacing={"brand": "Acme", "prompts": ["which shoes?"]})
    tenant = load_tenant(path)
    assert tenant.language == "de" and tenant.surfacing.brand == "Acme"


def test_an_edited_tenant_file_is_read_again_and_callers_get_their_own_copy(tmp_path):
    """Parsed files are kept per version (path, mtime, size): an edit is seen at once, and a
    caller changing what it got cannot change what the next caller reads."""
    from liftos.config import _read_yaml

    tenant = tmp_path / "acme.yaml"
    tenant.write_text("template: ecommerce\noverrides:\n  channels:\n    tv: {adstock: {max_lag: 12}}\n")
    assert load_tenant_template(tenant).channel("tv").adstock.max_lag == 12
    first = _read_yaml(tenant)
    first["overrides"]["channels"]["tv"]["adstock"]["max_lag"] = 3
    assert _read_yaml(tenant)["overrides"]["channels"]["tv"]["adstock"]["max_lag"] == 12
    tenant.write_text("template: ecommerce\noverrides:\n  channels:\n    tv: {adstock: {max_lag: 9}}\n")
    assert load_tenant_template(tenant).channel("tv").adstock.max_lag == 9
