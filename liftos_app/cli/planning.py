"""Planning commands: ``plan propose`` (from the tenant's trusted champion), ``plan
approve|reject RUN_ID`` (a paused budget-plan run), ``plan rollback``, and the decision audit,
``decisions log|verify``."""

from __future__ import annotations

import argparse

from liftos.errors import LiftOSError


def register(commands: argparse._SubParsersAction) -> None:
    plan = commands.add_parser("plan", help="budget plans from the champion")
    sub = plan.add_subparsers(dest="plan_command", required=True)
    propose = sub.add_parser("propose", help="the best weekly allocation under constraints, "
                                             "with its expected lift and risk")
    propose.add_argument("--tenant", required=True, help="tenant name (its champion plans)")
    propose.add_argument("--objective", choices=["expected", "cvar", "target-roas"],
                         default="expected",
                         help="maximise the posterior mean lift, the mean of its worst 10%% "
                              "of draws (risk-averse), or find the largest budget whose next "
                              "dollar returns --target-roas (default: %(default)s)")
    propose.add_argument("--target-roas", type=float, default=None,
                         help="marginal ROAS the last dollar must still earn (target-roas)")
    propose.add_argument("--budget", type=float, default=None,
                         help="weekly total (default: the current weekly total)")
    propose.add_argument("--max-change", type=float, default=0.3,
                         help="largest change of a channel vs current, 0.3 = +-30%% "
                              "(default: %(default)s)")
    propose.add_argument("--freeze", action="append", default=[], metavar="CHANNEL",
                         help="keep a channel at its current spend (repeatable)")
    propose.add_argument("--bound", action="append", default=[], metavar="CHANNEL=MIN:MAX",
                         help="weekly spend limits of a channel (repeatable)")
    propose.add_argument("--relative-bound", action="append", default=[],
                         metavar="CHANNEL=MIN:MAX",
                         help="limits as multiples of current spend, e.g. tv=0.5:1.2")
    propose.add_argument("--horizon", type=int, default=13,
                         help="weeks the plan runs (default: %(default)s)")
    propose.set_defaults(handler=propose_command)

    for verdict, helptext in (("approve", ("approve a paused budget-plan run (optionally with "
                                          "edited amounts)")),
                              ("reject", "reject a paused budget-plan run")):
        answer = sub.add_parser(verdict, help=helptext)
        answer.add_argument("run_id", help="the budget-plan flow run's id")
        answer.add_argument("--by", required=True, help="who decides (name or e-mail)")
        answer.add_argument("--comment", default="", help="why")
        if verdict == "approve":
            answer.add_argument("--amount", action="append", default=[],
                                metavar="CHANNEL=WEEKLY",
                                help="approve with this weekly amount instead (repeatable)")
        answer.set_defaults(handler=answer_command, verdict=verdict)

    back = sub.add_parser("rollback", help="reinstate the approved plan before the one in force "
                                           "(a new decision; history is never edited)")
    back.add_argument("--tenant", required=True, help="whose plan")
    back.add_argument("--by", required=True, help="who decides (name or e-mail)")
    back.add_argument("--comment", default="", help="why")
    back.set_defaults(handler=rollback_command)

    decisions = commands.add_parser("decisions", help="the tenant's hash-chained decision audit")
    audit = decisions.add_subparsers(dest="decisions_command", required=True)
    for name, helptext, handler in (
            ("log", "every proposal and decision, oldest first", log_command),
            ("verify", "check the chain: names the first edited, missing or moved record",
             verify_command)):
        command = audit.add_parser(name, help=helptext)
        command.add_argument("--tenant", required=True, help="whose decisions")
        command.set_defaults(handler=handler)


def propose_command(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from liftos.planning.champion import plan_from_champion
    from liftos.planning.constraints import PlanConstraints

    try:
        constraints = PlanConstraints(
            budget=args.budget, max_change=args.max_change, frozen=tuple(args.freeze),
            bounds=dict(_bound(text, "--bound") for text in args.bound),
            relative_bounds=dict(_bound(text, "--relative-bound")
                                 for text in args.relative_bound))
    except ValidationError as exc:
        error = exc.errors()[0]
        raise LiftOSError(f"--{str(error['loc'][0]).replace('_', '-')}: "
                          f"{error['msg'].lower()}") from None
    result = plan_from_champion(args.tenant, constraints, args.objective, args.horizon,
                                args.target_roas, proposed_by=_who())
    plan = result.plan
    print(f"{plan.objective} plan for '{args.tenant}' from its champion (trust "
          f"{result.trust_score:.1f}), {plan.horizon_weeks} weeks:")
    print(f"{'channel':<12}{'current':>12}{'plan':>12}{'mROAS now':>11}{'mROAS plan':>12}"
          f"{'contribution change (94%)':>36}")
    for c in plan.channels:
        interval = (f"{c.contribution_change_mean:,.0f} [{c.contribution_change_low:,.0f}, "
                    f"{c.contribution_change_high:,.0f}]")
        print(f"{c.channel:<12}{c.current_weekly:>12,.0f}{c.recommended_weekly:>12,.0f}"
              f"{c.marginal_roas_current:>11.3g}{c.marginal_roas_recommended:>12.3g}"
              f"{interval:>36} {c.limit}")
    for channel, why in result.proposal.payload.get("not_recoverable", {}).items():
        print(f"{channel} kept at its current spend: not recoverable ({why})")
    print(f"expected lift {plan.lift_mean:,.0f} [{plan.lift_low:,.0f}, {plan.lift_high:,.0f}]; "
          f"beats the current allocation in {plan.probability_beats_current:.0%} of draws; "
          f"solver {plan.solver['status']} in {plan.solver['seconds']} s")
    print(f"plan: {result.folder / 'plan.json'}; proposal #{result.proposal.seq} in the "
          "decision audit")
    return 0


def answer_command(args: argparse.Namespace) -> int:
    """Resume the paused run with the typed answer; the flow validates and records it."""
    from uuid import UUID

    from prefect.exceptions import FlowPauseTimeout, NotPausedError, ObjectNotFound
    from prefect.flow_runs import resume_flow_run

    amounts = {}
    for text in getattr(args, "amount", []):
        channel, _, value = text.partition("=")
        try:
            amounts[channel] = float(value)
        except ValueError:
            raise LiftOSError(f"--amount {text!r}: expected CHANNEL=WEEKLY, e.g. tv=25000"
                              ) from None
    try:
        run_id = UUID(args.run_id)
    except ValueError:
        raise LiftOSError(f"{args.run_id!r} is not a flow run id") from None
    try:
        resume_flow_run(run_id, run_input={"decision": args.verdict, "approver": args.by,
                                           "comment": args.comment, "amounts": amounts})
    except ObjectNotFound:
        raise LiftOSError(f"no flow run {run_id} on the Prefect API") from None
    except NotPausedError:
        raise LiftOSError(f"run {run_id} is not waiting for a decision (not paused)") from None
    except FlowPauseTimeout:
        raise LiftOSError(f"run {run_id}: the proposal expired") from None
    except RuntimeError as exc:  # the server refused the answer (e.g. the form's rules)
        raise LiftOSError(f"run {run_id}: {exc}") from None
    print(f"{args.verdict} sent to run {run_id}; the flow checks it and records the decision")
    return 0


def rollback_command(args: argparse.Namespace) -> int:
    from liftos.planning.champion import rollback

    record = rollback(args.tenant, args.by, args.comment)
    weekly = ", ".join(f"{c} {v:,.0f}" for c, v in record.payload["weekly"].items())
    print(f"rolled back to decision #{record.payload['reinstates']} (record #{record.seq}): "
          f"{weekly}")
    return 0


def log_command(args: argparse.Namespace) -> int:
    from liftos.planning.audit import DecisionLog

    records = DecisionLog(args.tenant).verify()
    if not records:
        print(f"no decisions recorded for '{args.tenant}'")
    for record in records:
        print(record.describe())
    return 0


def verify_command(args: argparse.Namespace) -> int:
    from liftos.planning.audit import DecisionLog

    records = DecisionLog(args.tenant).verify()
    head = records[-1].hash[:16] if records else "empty"
    print(f"decision audit of '{args.tenant}' intact: {len(records)} record(s), head {head}")
    return 0


def _who() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _bound(text: str, flag: str) -> tuple[str, tuple[float, float]]:
    try:
        channel, limits = text.split("=", 1)
        low, high = (float(v) for v in limits.split(":", 1))
    except ValueError:
        raise LiftOSError(f"{flag} {text!r}: expected CHANNEL=MIN:MAX, e.g. tv=1000:5000"
                          ) from None
    return channel, (low, high)
