"""Commands (updates): disputes, pauses, closing, promises and plans. Each has a validator
(`validators.py`), so a refusal is answered at once, and answers once its event is recorded."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

from workflows import schedule
from workflows.journey import validators as check
from workflows.journey.base import JourneyBase
from workflows.journey.messages import PATCH_CONFIRM_DISPUTE
from workflows.journey.plans import PATCH_NOTHING_LEFT_WAITING
from workflows.journey.state import DISPUTE, PAUSE, PLAN, PROMISE, Dispute
from workflows.models import (
    ActionResult,
    AgreeArrangement,
    CancelArrangement,
    Close,
    DisputeOutcome,
    OpenDispute,
    Outcome,
    Pause,
    PromiseToPay,
    ResolveDispute,
    Resume,
)
from workflows.plan import plan_workflow_id
from workflows.policy import Tone


class Commands(JourneyBase):
    def _hold(self, kind: str) -> None:
        self._s.holds.hold(kind, workflow.now())
        self._dirty = True

    def _release(self, kind: str) -> None:
        self._s.holds.release(kind, workflow.now())
        self._dirty = True

    @workflow.update
    async def open_dispute(self, cmd: OpenDispute) -> ActionResult:
        self._s.dispute = Dispute(reason=cmd.reason, actor=cmd.actor, opened_at=workflow.now())
        self._hold(DISPUTE)
        self._tell_plan_hold()
        mark = self._emit("dispute_opened", cmd.actor, reason=cmd.reason)
        if cmd.actor == "debtor" and workflow.patched(PATCH_CONFIRM_DISPUTE):
            # Told on their page, confirmed in writing at once: the hold is the point of it.
            self._queue_message("dispute_received", Tone.friendly, during_holds=True)
        await self._recorded(mark)
        return self._result("reminders stopped while the dispute is open")

    @open_dispute.validator
    def _validate_open_dispute(self, cmd: OpenDispute) -> None:
        check.must_be_open(self._s)
        if self._s.dispute is not None:
            raise check.refuse("a dispute is already open on this invoice", "DisputeAlreadyOpen")

    @workflow.update
    async def resolve_dispute(self, cmd: ResolveDispute) -> ActionResult:
        s = self._s
        s.dispute = None
        detail: dict[str, object] = {"outcome": cmd.outcome.value, "note": cmd.note or None}
        if cmd.outcome == DisputeOutcome.adjusted:
            assert cmd.amount is not None
            detail["previous_outstanding"] = str(s.outstanding)
            s.outstanding = cmd.amount
            detail["outstanding"] = str(cmd.amount)
        mark = self._emit("dispute_resolved", cmd.actor, **detail)
        if cmd.outcome == DisputeOutcome.upheld:
            mark = self._close(Outcome.cancelled, cmd.actor, "dispute upheld")
        else:
            self._release(DISPUTE)
            self._tell_plan_hold()
            reason = "the dispute changed the amount"
            dropped = (
                self._plans.abandon(reason, cmd.actor)
                if cmd.outcome == DisputeOutcome.adjusted
                else None
            )
            if dropped is not None:
                # The plan no longer adds up: it ends, and an agent agrees a new one.
                for number in dropped:
                    self._emit(
                        "arrangement_ended",
                        cmd.actor,
                        plan=number,
                        outcome="ended",
                        reason=f"{reason} before the plan started",
                    )
                self._no_plan_left()
                self._task(
                    "agree_plan",
                    f"Agree a new instalment plan for invoice {self._invoice.invoice_id}: "
                    f"the dispute set the amount to {self._invoice.currency} {cmd.amount}",
                )
            if s.ladder.performed_any:
                # Its key is unique: a second dispute's review is not taken for a repeat.
                self._queue_message("dispute_review", Tone.neutral, outcome=cmd.outcome.value)
        await self._recorded(mark)
        return self._result()

    @resolve_dispute.validator
    def _validate_resolve_dispute(self, cmd: ResolveDispute) -> None:
        check.check_resolution(cmd, self._s, self._invoice.currency)

    @workflow.update
    async def pause(self, cmd: Pause) -> ActionResult:
        self._s.pause = cmd
        self._hold(PAUSE)
        self._tell_plan_hold()
        until = cmd.until.isoformat() if cmd.until else None
        await self._recorded(self._emit("paused", cmd.actor, reason=cmd.reason, until=until))
        return self._result()

    @pause.validator
    def _validate_pause(self, cmd: Pause) -> None:
        check.must_be_open(self._s)
        if self._s.pause is not None:
            raise check.refuse("the journey is already paused", "AlreadyPaused")
        if cmd.until is not None and cmd.until <= workflow.now():
            raise check.refuse("`until` must be in the future", "InvalidUntil")

    @workflow.update
    async def resume(self, cmd: Resume) -> ActionResult:
        self._s.pause = None
        self._release(PAUSE)
        self._tell_plan_hold()
        await self._recorded(self._emit("resumed", cmd.actor, reason=cmd.reason or None))
        return self._result()

    @resume.validator
    def _validate_resume(self, cmd: Resume) -> None:
        check.must_be_open(self._s)
        if self._s.pause is None:
            raise check.refuse("the journey is not paused", "NotPaused")

    @workflow.update
    async def cancel(self, cmd: Close) -> ActionResult:
        await self._recorded(self._close(Outcome.cancelled, cmd.actor, cmd.reason))
        return self._result()

    @cancel.validator
    def _validate_cancel(self, cmd: Close) -> None:
        check.must_be_open(self._s)

    @workflow.update
    async def write_off(self, cmd: Close) -> ActionResult:
        await self._recorded(self._close(Outcome.written_off, cmd.actor, cmd.reason))
        return self._result()

    @write_off.validator
    def _validate_write_off(self, cmd: Close) -> None:
        check.must_be_open(self._s)

    @workflow.update
    async def promise_to_pay(self, cmd: PromiseToPay) -> ActionResult:
        promise, limit = self._s.promise, self._policy.max_promises
        if promise.made >= limit:
            self._task(
                "agree_plan",
                f"The debtor of invoice {self._invoice.invoice_id} asked for another promise to "
                f"pay, beyond the policy's {limit}: call to agree a plan",
            )
            await self._recorded(
                self._emit("promise_refused", cmd.actor, reason="max_promises reached")
            )
            raise check.refuse(
                f"this invoice already had {promise.made} promises, the most the policy "
                "allows; a task to call the debtor and agree a plan was created instead",
                "PromiseLimitReached",
            )
        due = self._promised_moment(cmd) + self._policy.promise_grace
        replaced = promise.make(cmd, due)
        self._hold(PROMISE)
        mark = self._emit(
            "promise",
            cmd.actor,
            promised_on=cmd.promised_on.isoformat() if cmd.promised_on else None,
            promised_at=cmd.promised_at.isoformat() if cmd.promised_at else None,
            amount=str(cmd.amount) if cmd.amount is not None else None,
            grace_until=due.isoformat(),
            replaces_earlier=replaced or None,
        )
        await self._recorded(mark)
        return self._result(f"reminders wait until {due.isoformat()}")

    @promise_to_pay.validator
    def _validate_promise(self, cmd: PromiseToPay) -> None:
        check.check_promise(
            cmd,
            self._s,
            self._policy,
            self._invoice.currency,
            self._promised_moment(cmd),
            workflow.now(),
            plan_running=self._plans.running,
        )

    def _promised_moment(self, cmd: PromiseToPay) -> datetime:
        if cmd.promised_at is not None:
            return schedule.utc(cmd.promised_at)
        assert cmd.promised_on is not None
        tz = self._s.customer.timezone
        return schedule.due_moment(cmd.promised_on, None, tz, self._policy.send_window)

    def _promise_kept(self, actor: str) -> None:
        promise = self._s.promise
        self._emit("promise_kept", actor, paid=str(promise.paid))
        promise.end()
        self._release(PROMISE)
        self._queue_message("promise_kept", Tone.friendly)

    def _promise_broken(self) -> None:
        promise = self._s.promise
        assert promise.current is not None
        when = promise.current.promised_on or schedule.local_date(
            self._promised_moment(promise.current), self._s.customer.timezone
        )
        self._emit("promise_broken", "system", promised_on=when.isoformat())
        promise.end()
        self._release(PROMISE)
        tone = self._s.ladder.at_least(Tone.neutral)
        self._queue_message("promise_broken", tone, promised_date=when.isoformat())

    @workflow.update
    async def agree_arrangement(self, cmd: AgreeArrangement) -> ActionResult:
        if self._s.promise.current is not None:
            self._s.promise.end()
            self._release(PROMISE)
        self._hold(PLAN)
        number = self._plans.agree(cmd, cmd.actor)
        mark = self._emit(
            "arrangement",
            cmd.actor,
            plan=number,
            workflow_id=plan_workflow_id(workflow.info().workflow_id, number),
            instalments=[
                {
                    "due_on": i.due_on.isoformat() if i.due_on else None,
                    "due_at": i.due_at.isoformat() if i.due_at else None,
                    "amount": str(i.amount),
                }
                for i in cmd.instalments
            ],
        )
        await self._recorded(mark)
        return self._result(f"instalment plan {number} agreed; its reminders replace the ladder")

    @agree_arrangement.validator
    def _validate_arrangement(self, cmd: AgreeArrangement) -> None:
        check.check_arrangement(cmd, self._s, self._invoice, self._policy, workflow.now())

    @workflow.update
    async def cancel_arrangement(self, cmd: CancelArrangement) -> ActionResult:
        self._plans.cancel(cmd.reason, cmd.actor)
        self._no_plan_left()
        await self._recorded(
            self._emit("arrangement_ended", cmd.actor, outcome="cancelled", reason=cmd.reason)
        )
        return self._result("the plan is cancelled; reminders resume")

    def _no_plan_left(self) -> None:
        """Every plan ended before it ran (cancelled in the task that agreed it): the journey
        takes up its ladder again at once; otherwise the last plan's end releases the hold."""
        if PLAN in self._s.holds and not self._plans.running and not self._plans.requests:
            if workflow.patched(PATCH_NOTHING_LEFT_WAITING):
                self._release(PLAN)

    @cancel_arrangement.validator
    def _validate_cancel_arrangement(self, cmd: CancelArrangement) -> None:
        check.must_be_open(self._s)
        if not self._plans.running and not self._plans.requests:
            raise check.refuse("no instalment plan is running", "NoArrangement")
