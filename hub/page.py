"""The LiftOS hub: the page a marketing lead opens every Monday (Streamlit).

It reads everything through the LiftOS API with the signed-in person's token
(``LIFTOS_API_URL``, default ``http://127.0.0.1:8765``) and never opens LiftOS files itself, so
it shows exactly what the token may see. Run it with ``liftos hub``.
"""

from __future__ import annotations

import os
from typing import Any

import altair as alt
import httpx
import pandas as pd
import streamlit as st

API = os.environ.get("LIFTOS_API_URL", "http://127.0.0.1:8765")
PAGES = ("Overview", "Channels", "Trust", "Plans", "Memory", "Data")


class Api:
    """The API with this person's token; an error becomes a message on the page."""

    def __init__(self, token: str):
        self.client = httpx.Client(base_url=API, timeout=90,
                                   headers={"Authorization": f"Bearer {token}"})

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params or None)
        if response.status_code == 404:
            return None
        self._check(response)
        return response.json()

    def post(self, path: str, body: dict | None = None) -> dict[str, Any]:
        response = self.client.post(path, json=body or {})
        self._check(response)
        return response.json()

    def image(self, path: str) -> bytes | None:
        response = self.client.get(path)
        return response.content if response.status_code == 200 else None

    @staticmethod
    def _check(response: httpx.Response) -> None:
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise ApiRefused(response.status_code, message)


class ApiRefused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"{message} (HTTP {status})")
        self.status = status


def main() -> None:
    st.set_page_config(page_title="LiftOS hub", layout="wide")
    token = st.session_state.get("token")
    if not token:
        sign_in()
        return
    api = Api(token)
    try:
        me = api.get("/v1/me")
    except ApiRefused:
        me = None
    if me is None:
        st.session_state.pop("token", None)
        st.error("That token is not valid any more; sign in again.")
        sign_in()
        return
    tenants = api.get("/v1/tenants") or []
    st.sidebar.markdown(f"**LiftOS** · signed in as **{me['name']}**")
    page = st.sidebar.radio("Page", PAGES, key="page")
    names = [t["name"] for t in tenants]
    if not names:
        st.info("This token sees no tenant with data yet.")
        return
    tenant = st.sidebar.selectbox("Tenant", names, key="tenant")
    if st.sidebar.button("Sign out"):
        st.session_state.clear()
        st.rerun()
    try:
        {"Overview": overview, "Channels": channels, "Trust": trust, "Plans": plans,
         "Memory": memory, "Data": data}[page](api, tenant if page != "Overview" else names, me)
    except ApiRefused as refused:
        st.error(str(refused))
    except httpx.HTTPError as exc:
        st.error(f"The LiftOS API did not answer ({type(exc).__name__}); try again in a moment.")


def sign_in() -> None:
    st.title("LiftOS")
    st.caption("What each channel caused, how sure we are, and where the next dollar goes.")
    with st.form("sign-in"):
        token = st.text_input("API token", type="password",
                              help="from `liftos hub` or `liftos api token create`")
        if st.form_submit_button("Sign in") and token:
            st.session_state["token"] = token.strip()
            st.rerun()


def overview(api: Api, names: list[str], me: dict) -> None:
    st.title("This week")
    for name in names:
        view = api.get(f"/v1/tenants/{name}")
        st.subheader(name)
        champion, last = view["champion"], view["last_run"]
        left, middle, right, far = st.columns(4)
        if champion is None:
            left.metric("Model in service", "none yet")
        else:
            left.metric("Trust score", f"{champion['trust_score']:.1f}",
                        "passes" if champion["passes"] else "below threshold",
                        delta_color="normal" if champion["passes"] else "inverse")
        if last:
            middle.metric("Last refresh", (last["at"] or "")[:10],
                          "promoted" if last["promoted"] else "kept the champion",
                          delta_color="off")
        check = view["latest_check"]
        right.metric("Latest check", check["week"] if check else "none",
                     f"{len(check['anomalies'])} anomalies" if check else None,
                     delta_color="inverse" if check and check["anomalies"] else "off")
        far.metric("Plans waiting for you", len(view["pending_plans"]))
        if check and check["anomalies"]:
            st.warning("; ".join(check["anomalies"]))
        if last and last.get("url"):
            st.markdown(f"[Last run in Prefect]({last['url']})")


def channels(api: Api, tenant: str, me: dict) -> None:
    model = api.get(f"/v1/tenants/{tenant}/model")
    if model is None:
        st.info(f"{tenant} has no model in service yet.")
        return
    kpi = model["kpi"]
    ratio = "ROAS" if kpi["kind"] == "revenue" else f"{kpi['name']} per unit of spend"
    st.title(f"{tenant}: what each channel caused")
    st.caption(f"{model['data']['weeks']} weeks, {model['data']['start'][:10]} to "
               f"{model['data']['end'][:10]}; 94% intervals; trust {model['trust_score']}")
    rows, held = [], []
    for name, ch in model["channels"].items():
        if ch["not_recoverable"]:
            held.append(f"**{name}**: not recoverable on this spend ({ch['not_recoverable']})")
            rows.append({"channel": name, ratio: "not recoverable", "94% interval": "",
                         f"contribution ({kpi['unit']})": "", "share of media": "",
                         "spend": f"{ch['spend_total']:,.0f}"})
            continue
        unsettled = ch.get("not_converged")
        if unsettled:
            held.append(f"**{name}**: its {ratio} has not converged ({unsettled})")
        rows.append({"channel": name,
                     ratio: f"{ch['roas_mean']:.2f}" + (" ⚠ not converged" if unsettled else ""),
                     "94% interval": f"{ch['roas_hdi_low']:.2f} – {ch['roas_hdi_high']:.2f}",
                     f"contribution ({kpi['unit']})": f"{ch['contribution_total_mean']:,.0f}",
                     "share of media": f"{ch['share_mean']:.1%}",
                     "spend": f"{ch['spend_total']:,.0f}"})
    st.table(pd.DataFrame(rows).set_index("channel"))
    for line in held:
        st.markdown(line)
    known = pd.DataFrame([{"channel": n, "mean": c["roas_mean"], "low": c["roas_hdi_low"],
                           "high": c["roas_hdi_high"]}
                          for n, c in model["channels"].items() if c["roas_mean"] is not None])
    if not known.empty:
        base = alt.Chart(known).encode(y=alt.Y("channel:N", sort="-x"))
        st.altair_chart(base.mark_rule().encode(x=alt.X("low:Q", title=ratio), x2="high:Q")
                        + base.mark_point(filled=True, size=80).encode(x="mean:Q"),
                        use_container_width=True)
    signals = {k: v for k, v in model.get("controls", {}).items()
               if k in ("sentiment", "visibility")}
    if signals:
        st.subheader("Signals")
        st.table(pd.DataFrame([{"signal": k, f"{kpi['unit']} per week per unit":
                                f"{v['effect_per_unit_mean']:,.0f}",
                                "94% interval": f"{v['effect_per_unit_hdi_low']:,.0f} – "
                                                f"{v['effect_per_unit_hdi_high']:,.0f}"}
                               for k, v in signals.items()]).set_index("signal"))
    series = api.get(f"/v1/tenants/{tenant}/contributions")
    if series:
        st.subheader("Contribution over time")
        frame = pd.DataFrame(series["channels"], index=pd.to_datetime(series["dates"]))
        st.area_chart(frame)
    curves = api.get(f"/v1/tenants/{tenant}/curves")
    if curves and curves["curves"]:
        st.subheader("Response curves (weekly spend → weekly contribution)")
        for name, curve in curves["curves"].items():
            st.altair_chart(response_chart(name, curve), use_container_width=True)


def response_chart(name: str, curve: dict[str, Any]) -> alt.LayerChart:
    frame = pd.DataFrame({"spend": curve["spend"], "mean": curve["response_mean"],
                          "low": curve["response_hdi_low"], "high": curve["response_hdi_high"]})
    line = alt.Chart(frame).encode(x=alt.X("spend:Q", title=f"{name} weekly spend"))
    now = alt.Chart(pd.DataFrame({"spend": [curve["current_weekly_spend"]]})).mark_rule(
        strokeDash=[4, 4]).encode(x="spend:Q")
    return (line.mark_area(opacity=0.25).encode(y="low:Q", y2="high:Q")
            + line.mark_line().encode(y=alt.Y("mean:Q", title="weekly contribution")) + now
            ).properties(height=220, title=f"{name} (dashed: current spend)")


def trust(api: Api, tenant: str, me: dict) -> None:
    card = api.get(f"/v1/tenants/{tenant}/trust")
    if card is None:
        st.info(f"{tenant} has no validated model in service yet.")
        return
    verdict = "passes" if card["passes"] else "is below"
    st.title(f"{tenant}: trust score {card['score']:.1f}")
    st.markdown(f"The model in service {verdict} the {card['threshold']:.0f} threshold.")
    components = pd.DataFrame([{"component": k, "score": v} for k, v in
                               card["components"].items()])
    st.altair_chart(alt.Chart(components).mark_bar().encode(
        x=alt.X("score:Q", scale=alt.Scale(domain=[0, 100])), y="component:N"),
        use_container_width=True)
    failed = [c for c in card["checks"] if not c["passed"]]
    st.subheader(f"{len(failed)} check(s) failed")
    for c in failed:
        st.markdown(f"- **{c['name']}** ({c['group']}): {c['value']} against {c['threshold']}"
                    + (f". {c['detail']}" if c["detail"] else ""))
    st.subheader("Every check")
    st.table(pd.DataFrame([{"group": c["group"], "check": c["name"], "value": str(c["value"]),
                            "threshold": c["threshold"], "pass": "yes" if c["passed"] else "no"}
                           for c in card["checks"]]))
    st.subheader("Champion history")
    st.table(pd.DataFrame([{"since": r["at"], "fit": r["fit"], "trust": r["trust_score"],
                            "last week": r["last_week"]} for r in card["champions"]]))


def plans(api: Api, tenant: str, me: dict) -> None:
    view = api.get(f"/v1/tenants/{tenant}/plans")
    st.title(f"{tenant}: budget plans")
    if not view["verified"]:
        st.error(f"The decision audit does not verify: {view['problem']}")
    pending = [p for p in view["plans"] if p["status"] == "pending"]
    for plan in pending:
        st.subheader(f"Plan #{plan['seq']} waits for a decision")
        st.markdown(f"Expected lift **{plan['lift_mean']:,.0f}** (94%: "
                    f"{plan['lift_hdi_low']:,.0f} to {plan['lift_hdi_high']:,.0f}) over "
                    f"{plan['horizon_weeks']} weeks; beats the current allocation in "
                    f"{plan['probability_beats_current']:.0%} of draws.")
        st.table(pd.DataFrame([{"channel": c["channel"],
                                "current weekly": f"{c['current_weekly']:,.0f}",
                                "plan weekly": f"{c['recommended_weekly']:,.0f}",
                                "limit": c.get("limit", "")} for c in plan["channels"]]))
        if "approve" not in me["scopes"]:
            st.caption("Your token cannot approve plans.")
            continue
        with st.form(f"decide-{plan['seq']}"):
            decision = st.radio("Decision", ("approve", "reject"), horizontal=True)
            comment = st.text_input("Comment")
            if st.form_submit_button("Send decision"):
                sent = api.post(f"/v1/tenants/{tenant}/plans/{plan['seq']}/decision",
                                {"decision": decision, "comment": comment})
                st.success(f"Decision sent ({sent['decision']}): {sent['message']}.")
    if not pending:
        st.info("No plan is waiting for a decision.")
    st.subheader("Decision log")
    st.table(pd.DataFrame([{"#": r["seq"], "when": r["at"], "what": r["describe"]}
                           for r in view["records"]] or [{"#": "", "when": "", "what": "none"}]))


def memory(api: Api, tenant: str, me: dict) -> None:
    st.title(f"{tenant}: what we learned")
    precedents = api.get(f"/v1/tenants/{tenant}/similar", k=3) or []
    if precedents:
        st.subheader("Past situations most like this week")
        for p in precedents:
            after = p["followed_by"]["text"] if p["followed_by"] else "nothing recorded yet"
            st.markdown(f"- **{p['past'].get('date_end') or ''}** ({p['score']:.2f}): "
                        f"{p['past']['text']}  \n  *What followed:* {after}")
    query = st.text_input("Search memory", placeholder="e.g. when did tv stop working?")
    if not query:
        return
    hits = api.get(f"/v1/tenants/{tenant}/memory", q=query, k=8) or []
    if not hits:
        st.info("Nothing remembered matches.")
    for hit in hits:
        when = f" · {hit['date_end']}" if hit.get("date_end") else ""
        st.markdown(f"**{hit['kind']}**{when} · score {hit['score']:.2f}  \n{hit['text']}")


def data(api: Api, tenant: str, me: dict) -> None:
    view = api.get(f"/v1/tenants/{tenant}/quality")
    st.title(f"{tenant}: data quality")
    quarantine = view["quarantine"]
    if quarantine:
        st.subheader("In quarantine")
        st.table(pd.DataFrame([{"table": t, "rows": q["rows"],
                                "rules": ", ".join(f"{k} ({v})" for k, v in q["by_rule"].items())}
                               for t, q in quarantine.items()]))
    else:
        st.info("No rows in quarantine.")
    if view["drift"]:
        st.subheader("Schema drift in the sources")
        st.table(pd.DataFrame([{"when": d["at"][:19], "source": d["source"],
                                "change": d["change"],
                                "load": "stopped" if d["load_stopped"] else "went on"}
                               for d in view["drift"]]))
    if view["batches"]:
        st.subheader("Latest batches")
        st.table(pd.DataFrame(view["batches"]).astype(str))


main()
