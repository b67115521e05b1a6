"""Facts from outside (signals): payments, contact changes, opt-outs, bounces, tasks done.

A fact is never refused. While a plan runs (or starts) each is passed on to it, in order.
"""

from __future__ import annotations

from temporalio import workflow

from workflows.common import ALL_CHANNELS, apply_contact_change, reachable_channels
from workflows.journey import holds
from workflows.journey.base import JourneyBase
from workflows.journey.state import CALL, REPLY, QueuedMessage
from workflows.models import (
    AgentRequest,
    ChannelOptedIn,
    ChannelOptedOut,
    ContactChanged,
    DebtorReplied,
    MessageBounced,
    Outcome,
    PaymentReceived,
    TaskCompleted,
)


class Facts(JourneyBase):
    @workflow.signal
    def payment_received(self, payment: PaymentReceived) -> None:
        s = self._s
        if payment.reference in s.payments:
            return  # the same payment reported again
        closed = s.outcome
        s.take_payment(payment)
        amount, reference = str(payment.amount), payment.reference
        if closed is not None:
            self._emit(
                "payment",
                payment.actor,
                amount=amount,
                reference=reference,
                note="received after the journey closed",
            )
            self._payment_after_close(closed, payment)
            return
        self._emit(
            "payment",
            payment.actor,
            amount=amount,
            reference=reference,
            paid_at=payment.paid_at.isoformat() if payment.paid_at else None,
            outstanding=str(max(s.outstanding, 0)),
        )
        self._plans.forward("payment_received", payment)
        if s.promise.pay(payment.amount, s.outstanding):
            self._promise_kept(payment.actor)
        surplus = s.settle()
        if surplus is None:
            return
        if surplus > 0:
            self._task(
                "overpayment",
                f"Invoice {self._invoice.invoice_id} was overpaid by "
                f"{self._invoice.currency} {surplus}: refund or allocate it",
                surplus=str(surplus),
            )
        self._close(Outcome.paid, payment.actor, "paid in full")

    def _payment_after_close(self, outcome: Outcome, payment: PaymentReceived) -> None:
        """Money for a closed invoice belongs to someone's decision: an agent gets a task."""
        money = f"{self._invoice.currency} {payment.amount}"
        invoice = self._invoice.invoice_id
        if outcome == Outcome.paid:
            title = f"Invoice {invoice} was already paid and received {money} more: refund it"
            self._task("overpayment", title, surplus=str(payment.amount))
        else:
            title = (
                f"Invoice {invoice} ({outcome.value.replace('_', ' ')}) received a payment of "
                f"{money}: reopen the claim, pass it to the agency, or refund it"
            )
            self._task("payment_after_close", title, amount=str(payment.amount))

    @workflow.signal
    def contact_changed(self, change: ContactChanged) -> None:
        s = self._s
        s.customer, s.unreachable, fields = apply_contact_change(s.customer, s.unreachable, change)
        self._emit("contact_changed", change.actor, fields=fields)
        self._plans.forward("contact_changed", change)

    @workflow.signal
    def channel_opted_out(self, opt_out: ChannelOptedOut) -> None:
        self._s.unreachable.add(opt_out.channel)
        self._emit("opted_out", opt_out.actor, channel=opt_out.channel.value)
        self._plans.forward("channel_opted_out", opt_out)

    @workflow.signal
    def channel_opted_in(self, opt_in: ChannelOptedIn) -> None:
        self._s.unreachable.discard(opt_in.channel)
        self._emit("opted_in", opt_in.actor, channel=opt_in.channel.value)
        self._plans.forward("channel_opted_in", opt_in)

    @workflow.signal
    def message_bounced(self, bounce: MessageBounced) -> None:
        """A message accepted earlier never arrived: stop using that channel, send it elsewhere."""
        s = self._s
        if bounce.message_key in s.bounced:
            return
        s.bounced.add(bounce.message_key)
        s.unreachable.add(bounce.channel)
        self._emit(
            "message_bounced",
            bounce.actor,
            channel=bounce.channel.value,
            reason=bounce.reason or None,
            message_key=bounce.message_key,
        )
        self._plans.forward("message_bounced", bounce)
        last = s.last_message
        key = f"{workflow.info().workflow_id}:{last.key}:{bounce.channel.value}" if last else None
        if last is None or bounce.message_key != key:
            return  # not the latest message: the next one avoids the channel anyway
        last.reached.discard(bounce.channel)
        if last.reached or s.outcome is not None or s.holds.shifting:
            return
        if reachable_channels(s.customer, ALL_CHANNELS, s.unreachable):
            s.queued.append(
                QueuedMessage(
                    template=last.template,
                    tone=last.tone,
                    key=last.key,
                    extra=dict(last.extra),
                    resend=True,
                )
            )
        else:
            self._no_working_contact(last.template)

    @workflow.signal
    def debtor_replied(self, reply: DebtorReplied) -> None:
        """The debtor wrote back: a person reads it, and no reminder goes out meanwhile."""
        s = self._s
        if reply.reference and reply.reference in s.replies:
            return
        if reply.reference:
            s.replies.add(reply.reference)
        self._emit(
            "debtor_reply",
            reply.actor,
            channel=reply.channel.value,
            subject=reply.subject or None,
            text=reply.text,
            attachments=reply.attachments or None,
        )
        first_line = " ".join(reply.text.split())[:120]
        self._task(
            "reply",
            f"The debtor replied by {reply.channel.value} about invoice "
            f"{self._invoice.invoice_id}: {first_line}",
            channel=reply.channel.value,
        )
        if s.outcome is None:
            now = workflow.now()
            s.reply_until = holds.working_days_after(now, self._policy.reply_hold)
            s.holds.hold(REPLY, now)
            self._dirty = True

    @workflow.signal
    def agent_request(self, request: AgentRequest) -> None:
        """Something a person must settle: the request on the timeline, and a task."""
        self._emit("agent_request", request.actor, request=request.kind, **request.detail)
        self._task(request.kind, request.title, **request.detail)

    @workflow.signal
    def task_completed(self, done: TaskCompleted) -> None:
        if done.kind == "personal_call" and CALL in self._s.holds:
            self._s.holds.release(CALL, workflow.now())
            self._dirty = True
        if done.kind == "reply" and REPLY in self._s.holds:
            self._s.reply_until = None
            self._s.holds.release(REPLY, workflow.now())
            self._dirty = True
        self._emit(
            "task_completed", done.actor, task=done.kind, task_id=done.task_id, note=done.note
        )
