"""The brief's shape (claims citing facts) and the deterministic writer: sentences from templates,
held to the same grounding check as a model's. It is the offline default and the fallback."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from liftos.brief.facts import Fact, Facts, channel_words, format_number

UNCERTAIN = 0.25   # an interval whose low end is below this share of the mean: "uncertain"
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}
KPI_AMOUNTS = ("plan.lift", "anomaly.actual", "anomaly.expected", "contribution.")


class Claim(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="one sentence a marketer reads")
    fact_ids: list[str] = Field(description="ids of the facts every number in it comes from")


class Paragraph(BaseModel):
    model_config = ConfigDict(extra="forbid")

    claims: list[Claim]


class BriefText(BaseModel):
    """What a writer returns (and the structured output a model must produce)."""

    model_config = ConfigDict(extra="forbid")

    headline: Claim
    paragraphs: list[Paragraph]

    def claims(self) -> list[Claim]:
        return [self.headline, *(c for p in self.paragraphs for c in p.claims)]

    def markdown(self) -> str:
        body = "\n\n".join(" ".join(c.text for c in p.claims) for p in self.paragraphs)
        return f"# {self.headline.text}\n\n{body}\n"


def deterministic_brief(facts: Facts) -> BriefText:
    """Sentences from templates: what each channel caused, what changed, how far to trust it,
    what the plan recommends, an anomaly; every number a cited fact."""
    say = _Say(facts)
    paragraphs = [Paragraph(claims=[say.channel(c) for c in say.by_share()])]
    for build in (say.changes, say.trust, say.plan, say.anomaly):
        claims = build()
        if claims:
            paragraphs.append(Paragraph(claims=claims))
    return BriefText(headline=say.headline(), paragraphs=paragraphs)


class _Say:
    """Formats facts as the tenant reads numbers; one method per part of the brief."""

    def __init__(self, facts: Facts):
        self.facts = facts
        self.ratio = "ROAS" if facts.kind == "revenue" else f"{facts.kpi} per unit of spend"

    def n(self, fact_id: str) -> str:
        fact = self.facts.get(fact_id)
        if fact.direction:  # a change: its sign is in the verb ("fell 25%")
            fact = fact.model_copy(update={"value": abs(float(fact.value))})
        if fact.unit == "money":
            return self.money(fact)
        return fact.display(self.facts.language)

    def money(self, fact: Fact) -> str:
        """An amount: of the KPI (a count KPI in its own unit) or of spend (in its currency)."""
        value, lang = float(fact.value), self.facts.language
        if abs(value) >= 1e6:
            number = f"{format_number(value / 1e6, 2, lang)} million"
        else:
            number = format_number(value, 0, lang)
        if self.facts.kind == "count" and fact.id.startswith(KPI_AMOUNTS):
            return f"{number} {self.facts.kpi_unit or self.facts.kpi}"
        symbol = SYMBOLS.get(self.facts.currency)
        if symbol:
            return f"{symbol}{number}"
        return f"{number} {self.facts.currency}" if self.facts.currency else number

    def by_share(self) -> list[str]:
        return sorted(self.facts.channels, key=lambda c: -float(self.facts.get(f"share.{c}").value))

    def lost(self, channel: str) -> bool:
        return self.facts.get(f"not_recoverable.{channel}") is not None

    def headline(self) -> Claim:
        kept = [c for c in self.by_share() if not self.lost(c)] or self.by_share()
        top = kept[0]
        return Claim(text=(f"{_cap(channel_words(top))} drove {self.n(f'share.{top}')} of "
                           f"media-driven {self.facts.kpi} over the {self.n('weeks')} weeks to "
                           f"{self.n('last_week')}"),
                     fact_ids=[f"share.{top}", "weeks", "last_week"])

    def channel(self, c: str) -> Claim:
        words, share = _cap(channel_words(c)), self.n(f"share.{c}")
        if self.lost(c):
            return Claim(text=(f"{words}: not recoverable on this spend, so no {self.ratio} is "
                               f"stated ({self.n(f'not_recoverable.{c}')})."),
                         fact_ids=[f"not_recoverable.{c}"])
        mean, low = float(self.facts.get(f"roas.{c}").value), float(
            self.facts.get(f"roas_low.{c}").value)
        ids = [f"roas.{c}", f"roas_low.{c}", f"roas_high.{c}", f"share.{c}"]
        interval = f"{self.n(f'roas_low.{c}')} to {self.n(f'roas_high.{c}')}"
        if low < UNCERTAIN * mean:
            return Claim(text=(f"{words}: {self.ratio} {self.n(f'roas.{c}')}, but uncertain: "
                               f"anywhere from {interval} (94% interval); {share} of "
                               f"media-driven {self.facts.kpi}."), fact_ids=ids)
        if self.facts.kind == "count":
            return Claim(text=(f"{words}: {self.n(f'roas.{c}')} {self.facts.kpi} per unit of "
                               f"spend (94% interval {interval}); {share} of media-driven "
                               f"{self.facts.kpi}."), fact_ids=ids)
        unit = {"USD": "dollar", "EUR": "euro", "GBP": "pound"}.get(self.facts.currency,
                                                                  "unit of spend")
        return Claim(text=(f"{words}: each {unit} returned {self.n(f'roas.{c}')} in "
                           f"{self.facts.kpi} (94% interval {interval}); {share} of "
                           f"media-driven {self.facts.kpi}."), fact_ids=ids)

    def changes(self) -> list[Claim]:
        out = []
        for c in self.facts.channels:
            change = self.facts.get(f"roas_change.{c}")
            if change is None or self.lost(c):
                continue
            verb = {"up": "rose", "down": "fell", "flat": "held steady"}[change.direction]
            amount = "" if change.direction == "flat" else f" {self.n(change.id)}"
            out.append(Claim(text=(f"{_cap(channel_words(c))} {self.ratio} {verb}{amount} "
                                   f"against the model in service before "
                                   f"({self.n(f'roas_before.{c}')} then, "
                                   f"{self.n(f'roas.{c}')} now)."),
                             fact_ids=[change.id, f"roas_before.{c}", f"roas.{c}"]))
        return out

    def trust(self) -> list[Claim]:
        if self.facts.get("trust.score") is None:
            return []
        text, ids = f"The trust score is {self.n('trust.score')} out of 100", ["trust.score"]
        promoted = self.facts.get("model.promoted")
        if promoted is not None and promoted.value == "yes":
            text += "; the new model is now in service"
            ids.append("model.promoted")
        elif promoted is not None:
            reasons = self.facts.get("model.reasons")
            text += ("; the model in service stays, because "
                     f"{reasons.value}" if reasons else "; the new model was not put in service")
            ids += ["model.promoted"] + (["model.reasons"] if reasons else [])
        return [Claim(text=text + ".", fact_ids=ids)]

    def plan(self) -> list[Claim]:
        if self.facts.get("plan.lift") is None:
            return []
        out = []
        for c in self.facts.channels:
            change = self.facts.get(f"plan.change.{c}")
            if change is None or change.direction == "flat":
                continue
            verb = "raise" if change.direction == "up" else "cut"
            out.append(Claim(text=(f"The plan would {verb} {channel_words(c)} by "
                                   f"{self.n(change.id)} to {self.n(f'plan.recommended.{c}')} a "
                                   f"week (from {self.n(f'plan.current.{c}')})."),
                             fact_ids=[change.id, f"plan.recommended.{c}", f"plan.current.{c}"]))
        out.append(Claim(text=(
            f"Over {self.n('plan.horizon')} weeks it is expected to add "
            f"{self.n('plan.lift')} in {self.facts.kpi} (94% interval {self.n('plan.lift_low')} "
            f"to {self.n('plan.lift_high')}) and beats the current allocation in "
            f"{self.n('plan.probability')} of the model's scenarios."),
            fact_ids=["plan.horizon", "plan.lift", "plan.lift_low", "plan.lift_high",
                      "plan.probability"]))
        return out

    def anomaly(self) -> list[Claim]:
        if self.facts.get("anomaly.week") is None:
            return []
        return [Claim(text=(f"In the week of {self.n('anomaly.week')}, {self.facts.kpi} was "
                            f"{self.n('anomaly.actual')} where the model expected "
                            f"{self.n('anomaly.expected')}: worth a look."),
                      fact_ids=["anomaly.week", "anomaly.actual", "anomaly.expected"])]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]
